"""`smoe run` on the built-in demo model answers the held-out problems as well as PyTorch did
(within 1 point of the accuracy recorded in models/demo/demo.json), via check_accuracy.py."""

import os
import subprocess
import sys

SRC = os.environ.get("SMOE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.environ.get("SMOE_BIN")
if not BIN or not os.access(BIN, os.X_OK):
    print(f"skip: SMOE_BIN not set or not executable: {BIN!r}")
    sys.exit(77)
try:
    import numpy  # noqa: F401
except ImportError:
    print("skip: needs numpy (Debian's /usr/bin/python3)")
    sys.exit(77)

cmd = [sys.executable, os.path.join(SRC, "scripts", "demo", "check_accuracy.py"),
       "--engine", "smoe", "--against-torch", "--tolerance", "1", "-m",
       os.path.join(SRC, "models", "demo"), "--smoe-bin", BIN]
sys.exit(subprocess.run(cmd).returncode)
