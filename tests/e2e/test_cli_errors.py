"""Every user error a person will hit gives one clear line on stderr and a non-zero exit code."""
import json
import os
import tempfile

from smoe_test import Checks, smoe

c = Checks()


def expect_error(args, *needles, stdin=None):
    r = smoe(*args, stdin=stdin, check=False)
    err = r.stderr.strip()
    c.check(r.returncode != 0, f"{args}: exit code {r.returncode}, expected non-zero")
    for n in needles:
        c.check(n in err, f"{args}: stderr {err!r} lacks {n!r}")
    c.check("Segmentation" not in err and "terminate called" not in err, f"{args}: crashed: {err!r}")


with tempfile.TemporaryDirectory() as d:
    expect_error(["run", "-m", os.path.join(d, "nope.gguf"), "-p", "hi"], "does not exist")
    expect_error(["info", d], "without config.json")
    bad = os.path.join(d, "bad.gguf")
    with open(bad, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 8)
    expect_error(["info", bad], bad, "truncated")
    other = os.path.join(d, "notes.txt")
    with open(other, "w") as f:
        f.write("hello")
    expect_error(["info", other], "neither a GGUF")
    cfg = os.path.join(d, "config.json")
    with open(cfg, "w") as f:
        json.dump({"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}, f)
    expect_error(["info", cfg], "unsupported architecture", "GPT2LMHeadModel")
    with open(cfg, "w") as f:
        f.write("{not json")
    expect_error(["info", cfg], "invalid JSON")
    expect_error(["run", "-m", cfg, "-p", "x", "--temp", "-1"], "--temp")
    expect_error(["run", "-m", cfg, "-p", "x", "--top-p", "2"], "--top-p")
    expect_error(["run", "-m", cfg, "-p", "x", "-t", "abc"], "-t")
    expect_error(["logits", "-m", cfg, "--ids", "1 x 3", "--out", os.path.join(d, "o.npy")],
                 "not a token id")
    expect_error(["frobnicate"], "frobnicate")

c.done()
