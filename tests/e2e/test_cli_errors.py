"""Every user error a person will hit gives one clear line on stderr and a non-zero exit code."""
import json
import os
import tempfile

import sys

from smoe_test import SOURCE, Checks, smoe

c = Checks()


def expect_error(args, *needles, stdin=None, code=1):
    """`code` 2: a mistake in how smoe was called; 1: anything else. A crash (death by a signal,
    a negative code) fails, as does more than the one error line or a missing prefix."""
    r = smoe(*args, stdin=stdin, check=False)
    err = r.stderr.strip()
    c.check(r.returncode == code, f"{args}: exit code {r.returncode}, expected {code}: {err!r}")
    lines = err.splitlines()
    errors = [l for l in lines if l.startswith("smoe: error: ")]
    c.check(len(errors) == 1 and lines[-1] == errors[0] and not any(
        "error" in l.lower() for l in lines if l not in errors),
            f"{args}: not one 'smoe: error:' line at the end: {err!r}")
    for n in needles:
        c.check(n in err, f"{args}: stderr {err!r} lacks {n!r}")


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
    expect_error(["run", "-m", cfg, "-p", "x", "--temp", "-1"], "--temp", code=2)
    expect_error(["run", "-m", cfg, "-p", "x", "--top-p", "2"], "--top-p", code=2)
    expect_error(["run", "-m", cfg, "-p", "x", "-t", "abc"], "-t", "number", code=2)
    expect_error(["run", "-m", cfg, "-p", "x", "--temp", "abc"], "--temp", "number", code=2)
    expect_error(["logits", "-m", cfg, "--ids", "1 x 3", "--out", os.path.join(d, "o.npy")],
                 "not a token id", code=2)
    expect_error(["frobnicate"], "frobnicate", code=2)

    # Where the prompt comes from: never silently the default one.
    empty = os.path.join(d, "empty.txt")
    open(empty, "w").close()
    expect_error(["run", "-p", ""], "prompt is empty", code=2)
    expect_error(["run", "-f", empty], "empty.txt", "is empty", code=2)
    expect_error(["run", "-f", d], "is a directory", code=2)
    expect_error(["run", "-f", "-"], "no prompt on standard input", stdin="", code=2)
    expect_error(["bench", "-p", "-3"], "-p", code=2)
    expect_error(["bench"], "needs -m", code=2)

    # A prompt longer than the context.
    demo = os.path.join(SOURCE, "models", "demo.gguf")
    if os.path.exists(demo):
        expect_error(["routing", "-m", demo, "-f", empty], "is empty", code=2)
        expect_error(["run", "-m", demo], "no prompt", stdin="", code=2)
        expect_error(["run", "-m", demo, "-p", "1+1=" * 10, "-c", "8"], "the prompt has", "context holds 8",
                     "--ctx-size")
        expect_error(["logits", "-m", demo, "--ids", "1 99999", "--out", os.path.join(d, "o.npy")],
                     "token id 99999", "outside the vocabulary")

    # Weight types smoe cannot compute with, named with the tensor.
    sys.path.insert(0, os.path.join(SOURCE, "scripts"))
    import smoe_formats as sf

    def tiny_gguf(path, weight_type, nbytes):
        g = sf.GGUFWriter()
        for k, v in (("embedding_length", 32), ("block_count", 1), ("attention.head_count", 2),
                     ("feed_forward_length", 32), ("context_length", 64), ("vocab_size", 8)):
            g.u32("llama." + k, v)
        g.string("general.architecture", "llama")
        g.tensors.append(("token_embd.weight", weight_type, (8, 32), b"\0" * nbytes))
        g.write(path)

    bad_type = os.path.join(d, "iq.gguf")
    tiny_gguf(bad_type, 16, 8 * 32 * 4)  # 16 = IQ2_XXS
    expect_error(["info", bad_type], "token_embd.weight", "IQ2_XXS", "does not support")
    int_weights = os.path.join(d, "int.gguf")
    tiny_gguf(int_weights, 24, 8 * 32)  # 24 = I8
    expect_error(["run", "-m", int_weights, "-p", "x"], "token_embd.weight", "I8", "cannot compute")

c.done()
