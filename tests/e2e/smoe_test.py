"""Helpers shared by the end-to-end tests: where the binary and data are, running it, skipping."""
import os
import subprocess
import sys

SMOE = os.environ.get("SMOE_BIN", "")
SOURCE = os.environ.get("SMOE_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("SMOE_SHARED_DATA_DIR", os.path.join(SOURCE, "..", "shared", "data"))


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def shared(name):
    """Path of a file in ../shared/data, or skip the test saying why."""
    p = os.path.join(SHARED, name)
    if not os.path.exists(p):
        skip(f"{name} is not in {SHARED} (the shared third-party test data beside the checkout)")
    return p


def tiny_model(out, *args, quiet=False):
    """Writes a random model with scripts/make_tiny_model.py (its options in args) into the folder
    `out` (model.gguf, hf/, mistral/); returns the GGUF file's path."""
    subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "make_tiny_model.py"), "--out", out,
                    *map(str, args)], check=True, capture_output=quiet)
    return os.path.join(out, "model.gguf")


def smoe(*args, stdin=None, check=True, timeout=300):
    if not SMOE:
        skip("SMOE_BIN is not set (run through ctest)")
    r = subprocess.run([SMOE, *map(str, args)], input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"smoe {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    return r


def logits(model, ids, *extra):
    """`smoe logits` of the token ids as a numpy array (positions × vocab)."""
    import tempfile
    import numpy as np
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        smoe("logits", "-m", model, "--ids", " ".join(map(str, ids)), "--out", f.name, *extra)
        return np.load(f.name)


class Checks:
    """Counts checks and prints the closing line CI reads."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}")

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)
