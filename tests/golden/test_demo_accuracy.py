"""The built-in demo model (a trained Mixtral-style MoE: real routing, not random) answers its
held-out problems through the C++ engine as accurately as it did in PyTorch: within 1 point in
f32 and under Q8_0, within 3 points under Q4_0. The demo's rows (64 and 128 values) cannot hold
Q4_K_M's 256-value k-quant blocks: `quantize` must say so, and what it writes instead (Q8_0) must
still answer right. The k-quant kernels are checked on learned weights by test_demo_kquants.py,
on the 256-wide second demo model."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import SOURCE, Checks, skip, smoe  # noqa: E402

model = os.path.join(SOURCE, "models", "demo.gguf")
heldout = os.path.join(SOURCE, "models", "demo", "heldout.jsonl")
meta = os.path.join(SOURCE, "models", "demo", "demo.json")
for p in (model, heldout, meta):
    if not os.path.exists(p):
        skip(f"{p} is missing from the checkout")

problems = [json.loads(x) for x in open(heldout) if x.strip()]
torch_acc = json.load(open(meta))["heldout_accuracy"]["all"] * 100
c = Checks()
c.check(len(problems) >= 200, f"only {len(problems)} held-out problems")


def accuracy(path):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(p["prompt"] + "\n" for p in problems))
    try:
        out = smoe("run", "-m", path, "--prompts-file", f.name, "-n", "12", "--temp", "0", "--stop", "\n", "-q").stdout
    finally:
        os.unlink(f.name)
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert len(rows) == len(problems), (len(rows), len(problems))
    right = sum(r["text"].rstrip() == p["answer"] for r, p in zip(rows, problems))
    return 100.0 * right / len(problems)


f32 = accuracy(model)
print(f"PyTorch {torch_acc:.1f}%, smoe f32 {f32:.1f}% on {len(problems)} held-out problems")
c.check(abs(f32 - torch_acc) <= 1.0, f"f32 accuracy {f32:.1f}% is not within 1 point of {torch_acc:.1f}%")
with tempfile.TemporaryDirectory() as d:
    for qt, tol in (("Q8_0", 1.0), ("Q4_0", 3.0), ("Q4_K_M", 3.0)):
        q = os.path.join(d, f"demo-{qt}.gguf")
        r = smoe("quantize", model, q, "--type", qt, "-q")
        if qt == "Q4_K_M":
            c.check("Q4_K → Q8_0" in r.stderr and "notice" in r.stderr,
                    f"quantize did not say that the rows fell back to Q8_0: {r.stderr!r}")
        acc = accuracy(q)
        print(f"smoe {qt}: {acc:.1f}%")
        c.check(abs(acc - torch_acc) <= tol, f"{qt} accuracy {acc:.1f}% is not within {tol} of {torch_acc:.1f}%")
c.done()
