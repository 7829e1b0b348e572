"""Writes the trained demo model in Mistral's consolidated folder layout:

  params.json                  dim, n_layers, head_dim, hidden_dim, n_heads, n_kv_heads, norm_eps,
                               vocab_size, rope_theta, moe {num_experts, num_experts_per_tok}
  consolidated.safetensors     float32 (or float16), Mistral names, Linear weights (out, in)
  tokenizer.model              the SentencePiece BPE model
  heldout.jsonl                {"prompt", "answer", "torch"} per held-out problem ("torch" = the
                               PyTorch greedy answer of the exported weights)
  demo.json                    how it was made: seed, command, timings, accuracy (held-out, PyTorch)

Then reloads the folder and checks the reloaded model gives the same logits and accuracy.
"""

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import infer  # noqa: E402
import safetensors_io  # noqa: E402


def export(model, sp, out: str, tokenizer_path: str, heldout, dtype: str, info: dict) -> None:
    """dtype "f16" writes float16 tensors: the model's weights must already be float16 values."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(model.p.to_json(), f, indent=2)
        f.write("\n")
    tensors = {k: v.numpy() for k, v in model.consolidated_state().items()}
    if dtype == "f16":
        tensors = {k: v.astype("float16") for k, v in tensors.items()}
    safetensors_io.write(os.path.join(out, "consolidated.safetensors"), tensors,
                         {"format": "pt", "description": "smoe demo MoE (see demo.json)"})
    shutil.copyfile(tokenizer_path, os.path.join(out, "tokenizer.model"))

    # Reload what was written and re-evaluate from the files alone.
    reloaded, sp2 = infer.load_exported(out)
    for prompt, _ in (heldout[0], heldout[-1]):
        probe = torch.tensor([infer.prompt_ids(sp2, prompt)])
        with torch.no_grad():
            a, _ = model.eval()(probe)
            b, _ = reloaded(probe)
        if not torch.equal(a, b):
            raise RuntimeError(f"{out}: reloaded logits differ on {prompt!r}")
    answers = infer.greedy_answers(reloaded, sp2, [p for p, _ in heldout])
    correct = sum(got == ans for got, (_, ans) in zip(answers, heldout))
    acc = correct / len(heldout)
    if abs(acc - info["heldout_accuracy"]["all"]) > 1e-12:
        raise RuntimeError(f"{out}: reloaded accuracy {acc} != {info['heldout_accuracy']}")
    with open(os.path.join(out, "heldout.jsonl"), "w") as f:
        for (p, ans), got in zip(heldout, answers):
            f.write(json.dumps({"prompt": p, "answer": ans, "torch": got}) + "\n")
    info = dict(info, files={n: os.path.getsize(os.path.join(out, n)) for n in sorted(
        ["params.json", "consolidated.safetensors", "tokenizer.model", "heldout.jsonl"])})
    with open(os.path.join(out, "demo.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(f"exported to {out}: held-out accuracy {correct}/{len(heldout)} = {acc:.4f}")
