"""Sampling from the command line: a fixed seed gives the same text across runs and thread
counts, another seed other text; stop strings end the output and are never printed; logprobs."""
import os

from smoe_test import SOURCE, Checks, skip, smoe

model = os.path.join(SOURCE, "models", "demo.gguf")
if not os.path.exists(model):
    skip(f"{model} is missing")
c = Checks()
args = ["run", "-m", model, "-p", "417+86=", "--ignore-eos", "-n", "40", "--temp", "1.5",
        "--top-k", "0", "--top-p", "1", "--min-p", "0", "-q"]
a = smoe(*args, "--seed", "7", "-t", "1").stdout
b = smoe(*args, "--seed", "7", "-t", "2").stdout
d = smoe(*args, "--seed", "7", "-t", "3").stdout
e = smoe(*args, "--seed", "8", "-t", "2").stdout
c.check(a == b == d, f"same seed, different threads, different text:\n{a!r}\n{b!r}\n{d!r}")
c.check(a != e, "seeds 7 and 8 gave the same 40 sampled tokens")

out = smoe("run", "-m", model, "-p", "sort 9 8 7=", "--stop", "8", "-q").stdout
c.check(out == "sort 9 8 7=7 \n", f"stop string: {out!r}")
out = smoe("run", "-m", model, "-p", "sort 9 8 7=", "--stop", " 8 9", "-q").stdout
c.check(out == "sort 9 8 7=7\n", f"multi-token stop string: {out!r}")
r = smoe("run", "-m", model, "-p", "12+30=", "--logprobs", "3", "-q")
lines = [x for x in r.stderr.splitlines() if x.startswith("[")]
c.check(len(lines) >= 2 and lines[0].count("=") == 3, f"logprobs: {r.stderr!r}")
greedy = smoe("run", "-m", model, "-p", "12+30=", "-q").stdout
c.check(greedy == "12+30=42\n", f"greedy default: {greedy!r}")
c.done()
