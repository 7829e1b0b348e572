"""`smoe eval` (multiple-choice accuracy) on the demo model. The demo's held-out problems as tasks of
four candidate answers, one right (JSON lines): accuracy at least 99%, with its standard error and
tasks per second. Then the scoring rules, checked here in numpy from the model's own logits
(`smoe logits` of every choice on its own, no shared cache): a hand-made HellaSwag-format file
(context + " " + ending, every token after the ones all endings share, mean log-probability;
llama-perplexity --hellaswag's rule) and a WinoGrande CSV (the option in the sentence's '_', the
tokens after the option scored without the last when both choices have more than 3 of their own);
and llama.cpp's binary multiple-choice file (its ARC, MMLU and TruthfulQA sets: question + " " +
answer); every task's scores and choice must equal the ones computed here. Malformed files fail
naming the line."""
import json
import os
import random
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import SOURCE, Checks, skip, smoe  # noqa: E402

try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed")

model = os.path.join(SOURCE, "models", "demo.gguf")
heldout = os.path.join(SOURCE, "models", "demo", "heldout.jsonl")
for p in (model, heldout):
    if not os.path.exists(p):
        skip(f"{p} is missing from the checkout")
c = Checks()


def ids(text):
    return [int(x) for x in smoe("tokenize", "-m", model, "--ids-only", "-p", text).stdout.split()]


def logprobs(seq):
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        smoe("logits", "-m", model, "--ids", " ".join(map(str, seq)), "--out", f.name)
        lg = np.load(f.name).astype(np.float64)
    m = lg.max(axis=1, keepdims=True)
    return lg - m - np.log(np.exp(lg - m).sum(axis=1, keepdims=True))


def mean_lp(seq, lo, hi):
    lp = logprobs(seq)
    return float(np.mean([lp[i - 1, seq[i]] for i in range(lo, hi)]))


def shared(seqs):
    n = min(len(s) for s in seqs)
    i = 0
    while i < n and all(s[i] == seqs[0][i] for s in seqs):
        i += 1
    return i


def check_scores(what, out, expected):
    for k, (row, want) in enumerate(zip(out["results"], expected)):
        got = row["scores"]
        ok = all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(got, want))
        ok = ok and row["chosen"] == int(np.argmax(want))
        c.check(ok, f"{what} task {k + 1}: scores {got}, expected {want}")
    print(f"{what}: {len(expected)} tasks scored as computed here")


def wrong_answers(p, rng):
    a = p["answer"]
    if "+" in p["prompt"]:
        n = int(a)
        return [str(x) for x in (n + 1, n + 10, n - 1 if n > 0 else n + 100)]
    nums = a.split()
    outs = {" ".join(reversed(nums)), " ".join(nums[1:] + nums[:1]), " ".join(nums[:-1] + [str((int(nums[-1]) + 1) % 10)])}
    outs.discard(a)
    while len(outs) < 3:
        outs.add(" ".join(rng.sample(nums, len(nums))) + " " + str(rng.randrange(10)))
    return sorted(outs)[:3]


with tempfile.TemporaryDirectory() as tmp:
    rng = random.Random(5)
    problems = [json.loads(x) for x in open(heldout) if x.strip()]
    tasks = os.path.join(tmp, "demo.jsonl")
    with open(tasks, "w") as f:
        for p in problems:
            choices = wrong_answers(p, rng) + [p["answer"]]
            rng.shuffle(choices)
            f.write(json.dumps({"context": p["prompt"], "choices": choices, "answer": choices.index(p["answer"])}) + "\n")
    out = json.loads(smoe("eval", "-m", model, "-f", tasks, "--json").stdout)
    c.check(out["tasks"] == len(problems) and out["format"] == "multiple-choice", f"{out['tasks']} tasks")
    c.check(out["accuracy"] >= 0.99, f"demo tasks: accuracy {out['accuracy']:.4f} < 0.99")
    n = out["tasks"]
    want_err = (out["accuracy"] * (1 - out["accuracy"]) / (n - 1)) ** 0.5
    c.check(abs(out["error"] - want_err) < 1e-9, f"standard error {out['error']} vs {want_err}")
    print(f"demo tasks: {100 * out['accuracy']:.2f}% ± {100 * out['error']:.2f} over {n} tasks, "
          f"{out['tasks_per_second']:.0f} tasks/s")
    text = smoe("eval", "-m", model, "-f", tasks, "-q").stdout
    c.check(f"Final multiple-choice score ({n} tasks): {100 * out['accuracy']:.4f} +/- " in text, text)

    # HellaSwag's format and rule.
    hs = [("12+34=", 2, ["47", "460", "46", "45"]), ("sort 3 1 2=", 0, ["1 2 3", "3 2 1", "1 3 2", "2 1 3"]),
          ("999+1=", 1, ["1001", "1000", "100", "9991"]), ("sort 9 9 1=", 3, ["9 9 1", "9 1 9", "1 9", "1 9 9"])]
    path = os.path.join(tmp, "hs.txt")
    with open(path, "w") as f:
        for ctx, gold, endings in hs:
            f.write("\n".join([ctx, str(gold), *endings]) + "\n")
    out = json.loads(smoe("eval", "-m", model, "-f", path, "--format", "hellaswag", "--json").stdout)
    expected = []
    for ctx, gold, endings in hs:
        seqs = [ids(ctx + " " + e) for e in endings]
        cp = shared(seqs)
        expected.append([mean_lp(s, cp, len(s)) for s in seqs])
    check_scores("HellaSwag", out, expected)
    c.check([r["answer"] for r in out["results"]] == [g for _, g, _ in hs], "HellaSwag answers misread")

    # WinoGrande's CSV and rule (a header line, a quoted sentence with a comma).
    wg = [("The sum 12+34=_ is right.", "46", "47", 1), ('"Sorted, 3 1 2 gives _ as the list."', "1 2 3", "3 2 1", 1),
          ("Then _ follows 8.", "9", "7", 1), ("x _.", "1", "2", 2)]
    path = os.path.join(tmp, "wg.csv")
    with open(path, "w") as f:
        f.write("index,sentence,option1,option2,answer\n")
        for i, (s, o1, o2, a) in enumerate(wg):
            f.write(f"{i},{s},{o1},{o2},{a}\n")
    out = json.loads(smoe("eval", "-m", model, "-f", path, "--json").stdout)
    c.check(out["format"] == "WinoGrande", f"format {out['format']}")
    expected = []
    for s, o1, o2, a in wg:
        s = s.strip('"')
        first, second = s.split("_", 1)
        seqs = [ids(first + o + second) for o in (o1, o2)]
        base = [len(ids(first + o)) for o in (o1, o2)]
        cp = shared(seqs)
        after = all(len(q) - cp > 3 for q in seqs)
        row = []
        for q, b in zip(seqs, base):
            lo = b if after else cp
            hi = len(q) - (1 if len(q) - lo > 1 else 0)
            row.append(mean_lp(q, lo, hi))
        expected.append(row)
    check_scores("WinoGrande", out, expected)

    # llama.cpp's binary multiple-choice file (its ARC / MMLU / TruthfulQA sets): question + " " + answer.
    mc = [("7+8=", ["15", "16", "14"], 0), ("sort 5 2=", ["5 2", "2 5"], 1), ("40+2=", ["24", "402", "42", "41"], 2)]
    blobs = []
    for q, answers, right in mc:
        b = struct.pack("<I", len(q)) + q.encode()
        for labels in ([int(i == right) for i in range(len(answers))], []):
            lst = answers if labels else []
            b += struct.pack("<I", len(lst)) + b"".join(struct.pack("<I", len(a)) + a.encode() for a in lst)
            b += struct.pack(f"<{len(labels)}i", *labels)
        blobs.append(b)
    path = os.path.join(tmp, "tasks.bin")
    offsets, at = [], 4 + 4 * len(mc)
    for b in blobs:
        offsets.append(at)
        at += len(b)
    with open(path, "wb") as f:
        f.write(struct.pack(f"<I{len(mc)}I", len(mc), *offsets) + b"".join(blobs))
    out = json.loads(smoe("eval", "-m", model, "-f", path, "--json").stdout)
    expected = []
    for q, answers, right in mc:
        seqs = [ids(q + " " + a) for a in answers]
        cp = shared(seqs)
        expected.append([mean_lp(x, cp, len(x)) for x in seqs])
    check_scores("binary multiple-choice", out, expected)
    c.check([r["answer"] for r in out["results"]] == [r for _, _, r in mc], "binary answers misread")

    bad = os.path.join(tmp, "bad.jsonl")
    open(bad, "w").write('{"context": "1+1=", "choices": ["2", "3"], "answer": 0}\n{"context": 5}\n')
    e = smoe("eval", "-m", model, "-f", bad, check=False)
    c.check(e.returncode == 1 and "bad.jsonl:2:" in e.stderr, f"malformed line: {e.returncode} {e.stderr}")

c.done()
