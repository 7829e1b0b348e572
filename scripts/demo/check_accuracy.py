#!/usr/bin/python3
"""Held-out accuracy of the demo model through a given engine: greedy exact-match answers on the
problems in models/demo/heldout.jsonl (the rule is in infer.py / README.md).

  /usr/bin/python3 scripts/demo/check_accuracy.py --engine torch        # PyTorch, exported files
  /usr/bin/python3 scripts/demo/check_accuracy.py --engine numpy        # numpy oracle (no torch)
  SMOE_BIN=build/smoe /usr/bin/python3 scripts/demo/check_accuracy.py --engine smoe
  SMOE_BIN=build/smoe /usr/bin/python3 scripts/demo/check_accuracy.py --engine smoe-batch

Engines:
  torch       infer.greedy_answers on the model rebuilt from params.json + consolidated.safetensors
  numpy       np_model.NumpyModel.greedy (float64 arithmetic; slower, a few seconds)
  smoe        one process per prompt:  $SMOE_BIN run -m MODEL -p PROMPT -n MAX_NEW --temp 0
              The answer is its stdout, minus the prompt if it is echoed first, cut at the first
              newline, with trailing whitespace removed (stderr is ignored). `smoe run` must stop
              at EOS; stopping at a newline is optional (the cut does the same).
  smoe-batch  one process for all prompts (TODO: interface proposed for `smoe run`):
                $SMOE_BIN run -m MODEL -n MAX_NEW --temp 0 --prompts-file FILE
              FILE has one prompt per line; stdout must carry one JSON object per prompt, in order,
              {"text": GENERATED_TEXT} (other stdout lines not starting with '{' are ignored).
              Each text is cut and trimmed as for `smoe`.

--against-torch fails (exit 1) unless the accuracy is within --tolerance points (default 1) of the
PyTorch accuracy recorded in MODEL/demo.json; --min-accuracy fails below an absolute value.
Exit codes: 0 pass, 1 accuracy check failed, 2 usage / engine error.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_MODEL = os.path.normpath(os.path.join(HERE, "..", "..", "models", "demo"))
MAX_NEW = 12  # = infer.MAX_NEW (not imported: infer needs torch)


def clean_answer(prompt: str, text: str) -> str:
    """An engine's printed continuation -> the answer: drop an echoed prompt, cut at the first
    newline, strip trailing whitespace (leading spaces are kept: they would be wrong)."""
    if text.startswith(prompt):
        text = text[len(prompt):]
    return text.split("\n", 1)[0].rstrip()


def answers_torch(model_dir, prompts, max_new):
    import torch
    import infer
    torch.set_num_threads(1)
    model, sp = infer.load_exported(model_dir)
    return infer.greedy_answers(model, sp, prompts, max_new=max_new)


def answers_numpy(model_dir, prompts, max_new):
    import sentencepiece as spm
    import np_model
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    m = np_model.NumpyModel(model_dir)
    stops = {2, sp.piece_to_id("<0x0A>")}
    return [sp.decode(m.greedy([1] + sp.encode(p), stops, max_new)) for p in prompts]


def smoe_bin(args) -> str:
    b = args.smoe_bin or os.environ.get("SMOE_BIN")
    if not b or not os.access(b, os.X_OK):
        raise RuntimeError(f"smoe binary not found or not executable: {b!r} (set SMOE_BIN)")
    return b


def answers_smoe(model_dir, prompts, max_new, args):
    b, out = smoe_bin(args), []
    for p in prompts:
        cmd = [b, "run", "-m", model_dir, "-p", p, "-n", str(max_new), "--temp", "0"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr[-500:]}")
        out.append(clean_answer(p, r.stdout))
    return out


def answers_smoe_batch(model_dir, prompts, max_new, args):
    b = smoe_bin(args)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(p + "\n" for p in prompts))
        path = f.name
    try:
        cmd = [b, "run", "-m", model_dir, "-n", str(max_new), "--temp", "0", "--prompts-file", path]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr[-500:]}")
    texts = [json.loads(line)["text"] for line in r.stdout.splitlines() if line.startswith("{")]
    if len(texts) != len(prompts):
        raise RuntimeError(f"{' '.join(cmd)}: {len(texts)} answers for {len(prompts)} prompts")
    return [clean_answer(p, t) for p, t in zip(prompts, texts)]


def load_heldout(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows or any("prompt" not in r or "answer" not in r for r in rows):
        raise RuntimeError(f"{path}: expected JSON lines with 'prompt' and 'answer'")
    return rows


def report(rows, answers, show: int) -> dict:
    per = {}
    for r, got in zip(rows, answers):
        k = "sort" if r["prompt"].startswith("sort") else "add"
        c, n = per.get(k, (0, 0))
        per[k] = (c + (got == r["answer"]), n + 1)
    correct = sum(c for c, _ in per.values())
    res = {"accuracy": correct / len(rows), "correct": correct, "n": len(rows),
           **{f"accuracy_{k}": c / n for k, (c, n) in sorted(per.items())}}
    wrong = [(r["prompt"], r["answer"], got) for r, got in zip(rows, answers) if got != r["answer"]]
    for p, want, got in wrong[:show]:
        print(f"  wrong: {p!r} expected {want!r} got {got!r}")
    # Problems where the engine and the recorded PyTorch answer differ (a numerics hint).
    res["differs_from_torch"] = sum(1 for r, got in zip(rows, answers)
                                    if "torch" in r and got != r["torch"])
    return res


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument("--engine", choices=["torch", "numpy", "smoe", "smoe-batch"], default="torch")
    a.add_argument("-m", "--model", default=DEFAULT_MODEL)
    a.add_argument("--heldout", help="JSON lines {prompt, answer}; default MODEL/heldout.jsonl")
    a.add_argument("--smoe-bin", help="smoe executable (default $SMOE_BIN)")
    a.add_argument("-n", "--max-new", type=int, default=MAX_NEW)
    a.add_argument("--limit", type=int, help="use only the first N held-out problems")
    a.add_argument("--against-torch", action="store_true",
                   help="require |accuracy - PyTorch accuracy in demo.json| <= tolerance")
    a.add_argument("--tolerance", type=float, default=1.0, help="points (percent), default 1")
    a.add_argument("--min-accuracy", type=float, help="require accuracy >= this (0..1)")
    a.add_argument("--show", type=int, default=10, help="print up to N wrong answers")
    a.add_argument("--json-out", help="write the result as JSON here")
    args = a.parse_args()

    try:
        rows = load_heldout(args.heldout or os.path.join(args.model, "heldout.jsonl"))
        if args.limit:
            rows = rows[:args.limit]
        prompts = [r["prompt"] for r in rows]
        if args.engine == "torch":
            answers = answers_torch(args.model, prompts, args.max_new)
        elif args.engine == "numpy":
            answers = answers_numpy(args.model, prompts, args.max_new)
        elif args.engine == "smoe":
            answers = answers_smoe(args.model, prompts, args.max_new, args)
        else:
            answers = answers_smoe_batch(args.model, prompts, args.max_new, args)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
        print(f"error: engine {args.engine}: {e}", file=sys.stderr)
        return 2
    res = dict(report(rows, answers, args.show), engine=args.engine)
    print(json.dumps(res))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=2)
    ok = True
    if args.against_torch:
        with open(os.path.join(args.model, "demo.json")) as f:
            ref = json.load(f)["heldout_accuracy"]["all"]
        if args.limit:
            print("note: --limit with --against-torch compares a subset with the full-set figure")
        diff = abs(res["accuracy"] - ref) * 100
        print(f"accuracy {res['accuracy']:.4f} vs PyTorch {ref:.4f}: {diff:.2f} points "
              f"(tolerance {args.tolerance})")
        ok &= diff <= args.tolerance
    if args.min_accuracy is not None and res["accuracy"] < args.min_accuracy:
        print(f"accuracy {res['accuracy']:.4f} below the minimum {args.min_accuracy}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
