#!/usr/bin/python3
"""Trains the built-in demo model (a tiny Mixtral-architecture MoE) and exports it.

  /usr/bin/python3 scripts/demo/train.py --out models/demo        (defaults = the committed model)

Steps, all seeded from --seed:
  1. tokenizer: spm_train (BPE, byte_fallback, split_digits) on generated task text
  2. held-out set (seed+2) and validation set (seed+3), both excluded from training
  3. training on a stream of fresh problems (seed), AdamW, warmup + cosine decay
  4. held-out greedy exact-match accuracy, export (export.py) to --out
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import infer  # noqa: E402
import tasks  # noqa: E402
from model import Params, Transformer  # noqa: E402


def parse_args():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument("--out", default="models/demo", help="export folder")
    a.add_argument("--work", default="build/demo-train", help="scratch folder (corpus, spm model)")
    a.add_argument("--seed", type=int, default=1234)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--steps", type=int, default=4500)
    a.add_argument("--batch", type=int, default=128)
    a.add_argument("--lr", type=float, default=3e-3)
    a.add_argument("--warmup", type=int, default=100)
    a.add_argument("--weight-decay", type=float, default=0.01)
    a.add_argument("--aux-coef", type=float, default=0.01, help="load-balancing loss weight")
    a.add_argument("--prompt-weight", type=float, default=0.1,
                   help="loss weight of prompt tokens (answer tokens and EOS weigh 1)")
    a.add_argument("--add-fraction", type=float, default=0.7,
                   help="share of addition problems in training (sorting is learnt faster)")
    a.add_argument("--eval-every", type=int, default=500)
    a.add_argument("--dim", type=int, default=64)
    a.add_argument("--n-layers", type=int, default=4)
    a.add_argument("--n-heads", type=int, default=4)
    a.add_argument("--n-kv-heads", type=int, default=2)
    a.add_argument("--hidden-dim", type=int, default=128)
    a.add_argument("--rope-theta", type=float, default=10000.0)
    a.add_argument("--vocab-size", type=int, default=284)
    a.add_argument("--heldout-per-kind", type=int, default=250)
    a.add_argument("--val-per-kind", type=int, default=100)
    a.add_argument("--export-dtype", choices=("f32", "f16"), default="f32",
                   help="f16: weights rounded to float16 before the final evaluation and export")
    return a.parse_args()


def train_tokenizer(work: str, seed: int, vocab_size: int) -> str:
    """spm_train on 20000 generated problems; returns the .model path."""
    rng = random.Random(seed + 1)
    corpus = os.path.join(work, "spm_corpus.txt")
    with open(corpus, "w") as f:
        for _ in range(20000):
            f.write("".join(tasks.problem(rng)) + "\n")
    prefix = os.path.join(work, "tokenizer")
    cmd = ["spm_train", f"--input={corpus}", f"--model_prefix={prefix}", "--model_type=bpe",
           f"--vocab_size={vocab_size}", "--byte_fallback=true", "--split_digits=true",
           "--character_coverage=1.0", "--normalization_rule_name=identity",
           "--remove_extra_whitespaces=false", "--add_dummy_prefix=true",
           "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1",
           "--num_threads=1", f"--random_seed={seed}"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return prefix + ".model"


def make_batch(sp, rng: random.Random, excluded: set[str], n: int, prompt_weight: float,
               p_add: float):
    """(ids (n, T), targets (n, T), weights (n, T)) of fresh problems, right-padded."""
    seqs = []
    while len(seqs) < n:
        prompt, answer = tasks.problem(rng, p_add)
        if prompt not in excluded:
            seqs.append(infer.training_ids(sp, prompt, answer))
    T = max(len(s) for s, _ in seqs) - 1
    ids = torch.zeros(n, T, dtype=torch.long)
    tgt = torch.zeros(n, T, dtype=torch.long)
    w = torch.zeros(n, T)
    for r, (s, n_prompt) in enumerate(seqs):
        L = len(s) - 1
        ids[r, :L] = torch.tensor(s[:-1])
        tgt[r, :L] = torch.tensor(s[1:])
        w[r, :L] = 1.0
        w[r, :n_prompt - 1] = prompt_weight  # targets that are prompt tokens
    return ids, tgt, w


def accuracy(model, sp, problems) -> dict:
    answers = infer.greedy_answers(model, sp, [p for p, _ in problems])
    res = {"add": [0, 0], "sort": [0, 0]}
    for (p, a), got in zip(problems, answers):
        k = tasks.kind(p)
        res[k][0] += got == a
        res[k][1] += 1
    total = sum(c for c, _ in res.values()), sum(n for _, n in res.values())
    return {"all": total[0] / total[1], **{k: c / n for k, (c, n) in res.items()},
            "correct": total[0], "n": total[1]}


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    prog = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + torch.cos(torch.tensor(prog * 3.141592653589793))))


OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


def use_openblas() -> None:
    """Debian's torch calls whatever libblas.so.3 the system provides; the reference BLAS is ~15x
    slower than OpenBLAS. When Debian's libopenblas0-pthread is installed, re-run this script with
    its libblas.so.3 first on the library path (single-threaded), without changing the system's
    BLAS alternative."""
    if os.path.isdir(OPENBLAS_DIR) and os.environ.get("SMOE_DEMO_BLAS") is None:
        env = dict(os.environ, SMOE_DEMO_BLAS=OPENBLAS_DIR, OPENBLAS_NUM_THREADS="1",
                   LD_LIBRARY_PATH=OPENBLAS_DIR + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    use_openblas()
    args = parse_args()
    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)
    sp = spm.SentencePieceProcessor(model_file=train_tokenizer(args.work, args.seed,
                                                               args.vocab_size))
    heldout = tasks.heldout_set(args.seed + 2, args.heldout_per_kind)
    held_prompts = {p for p, _ in heldout}
    val = [pa for pa in tasks.heldout_set(args.seed + 3, args.val_per_kind)
           if pa[0] not in held_prompts]
    excluded = held_prompts | {p for p, _ in val}

    p = Params(dim=args.dim, n_layers=args.n_layers, head_dim=args.dim // args.n_heads,
               hidden_dim=args.hidden_dim, n_heads=args.n_heads, n_kv_heads=args.n_kv_heads,
               norm_eps=1e-5, vocab_size=sp.get_piece_size(), rope_theta=args.rope_theta,
               num_experts=8, num_experts_per_tok=2)
    model = Transformer(p)
    for name, prm in model.named_parameters():
        if prm.dim() == 2:
            torch.nn.init.normal_(prm, std=0.02)
    n_params = sum(x.numel() for x in model.parameters())
    print(f"params {p.to_json()}  total {n_params}", flush=True)
    decay = [x for x in model.parameters() if x.dim() == 2]
    no_decay = [x for x in model.parameters() if x.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    rng = random.Random(args.seed)
    t_train = time.time()
    log = []
    for step in range(args.steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = float(lr_at(step, args))
        ids, tgt, w = make_batch(sp, rng, excluded, args.batch, args.prompt_weight,
                                 args.add_fraction)
        logits, aux = model(ids)
        ce = F.cross_entropy(logits.reshape(-1, p.vocab_size), tgt.reshape(-1), reduction="none")
        loss = (ce * w.reshape(-1)).sum() / w.sum() + args.aux_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} aux {aux.item():.3f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - t_train:.0f}s", flush=True)
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            acc = accuracy(model, sp, val)
            log.append({"step": step + 1, "val": acc})
            print(f"  val accuracy {acc}", flush=True)
    train_seconds = time.time() - t_train
    if args.export_dtype == "f16":
        with torch.no_grad():
            for prm in model.parameters():
                prm.copy_(prm.half().float())

    acc = accuracy(model, sp, heldout)
    print(f"held-out accuracy {acc}", flush=True)
    export.export(model, sp, args.out, os.path.join(args.work, "tokenizer.model"), heldout,
                  args.export_dtype, {
        "seed": args.seed,
        "command": "/usr/bin/python3 " + " ".join(sys.argv),
        "args": vars(args),
        "torch_version": torch.__version__,
        "blas": os.environ.get("SMOE_DEMO_BLAS", "system libblas.so.3"),
        "n_params": n_params,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "heldout_accuracy": acc,
        "val_log": log,
    })


if __name__ == "__main__":
    main()
