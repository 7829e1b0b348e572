"""Shared by train.py, check_accuracy.py and torch_logits.py: prompt encoding, the greedy answer
rule, and loading the exported model (params.json + consolidated.safetensors + tokenizer.model).

Greedy answer rule (what the engine must reproduce):
  ids = [BOS=1] + sp.encode(prompt)              (SentencePiece, dummy-prefix space as usual)
  repeat at most max_new times:
      next = argmax(logits at the last position)  (ties: the lowest id)
      stop if next == EOS (2) or next is the newline byte piece <0x0A>; otherwise append it
  answer = sp.decode(generated ids)               (EOS / newline not included)
  correct iff answer == expected answer exactly.
"""

import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from model import Params, Transformer  # noqa: E402

BOS, EOS = 1, 2
MAX_NEW = 12  # longer than any answer ("0 1 2 3 4" is 9 pieces); a model that never stops fails


def newline_id(sp: spm.SentencePieceProcessor) -> int:
    return sp.piece_to_id("<0x0A>")


def stop_ids(sp: spm.SentencePieceProcessor) -> set[int]:
    return {EOS, newline_id(sp)}


def prompt_ids(sp, prompt: str) -> list[int]:
    return [BOS] + sp.encode(prompt)


def training_ids(sp, prompt: str, answer: str) -> tuple[list[int], int]:
    """[BOS] + tokens of prompt+answer + [EOS], and the number of prompt ids (with BOS). The tokens
    of the whole text always start with the prompt's own tokens ('=' ends a piece)."""
    p = prompt_ids(sp, prompt)
    full = [BOS] + sp.encode(prompt + answer) + [EOS]
    if full[:len(p)] != p:
        raise ValueError(f"tokens of {prompt + answer!r} do not start with those of {prompt!r}")
    return full, len(p)


@torch.no_grad()
def greedy_answers(model: Transformer, sp, prompts: list[str], max_new: int = MAX_NEW,
                   batch: int = 256) -> list[str]:
    """The greedy answer (see module doc) for each prompt; prompts of equal token length batch."""
    model.eval()
    stops = stop_ids(sp)
    enc = [prompt_ids(sp, p) for p in prompts]
    answers: list[str] = [""] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(enc):
        by_len.setdefault(len(ids), []).append(i)
    for idxs_all in by_len.values():
        for s in range(0, len(idxs_all), batch):
            idxs = idxs_all[s:s + batch]
            x = torch.tensor([enc[i] for i in idxs], dtype=torch.long)
            gen: list[list[int]] = [[] for _ in idxs]
            done = [False] * len(idxs)
            for _ in range(max_new):
                logits, _ = model(x)
                nxt = logits[:, -1].argmax(-1)
                for r, t in enumerate(nxt.tolist()):
                    if done[r]:
                        continue
                    if t in stops:
                        done[r] = True
                    else:
                        gen[r].append(t)
                if all(done):
                    break
                x = torch.cat([x, nxt[:, None]], dim=1)
            for r, i in enumerate(idxs):
                answers[i] = sp.decode(gen[r])
    return answers


def load_exported(model_dir: str) -> tuple[Transformer, spm.SentencePieceProcessor]:
    """Builds the PyTorch model from models/demo-style files, checking every tensor's shape."""
    with open(os.path.join(model_dir, "params.json")) as f:
        p = Params.from_json(json.load(f))
    model = Transformer(p)
    tensors, _ = safetensors_io.read(os.path.join(model_dir, "consolidated.safetensors"))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{model_dir}: missing tensors {missing[:5]}, unexpected {extra[:5]}")
    state = {}
    for name, ref in expected.items():
        arr = tensors[name]
        if list(arr.shape) != list(ref.shape) or arr.dtype not in (np.float32, np.float16):
            raise ValueError(f"{model_dir}: tensor '{name}' is {arr.dtype} {list(arr.shape)}, "
                             f"expected float32 or float16 {list(ref.shape)}")
        state[name] = torch.from_numpy(arr.astype(np.float32))
    model.load_state_dict(state)
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    if sp.get_piece_size() != p.vocab_size:
        raise ValueError(f"{model_dir}: tokenizer.model has {sp.get_piece_size()} pieces, "
                         f"params.json vocab_size is {p.vocab_size}")
    return model, sp
