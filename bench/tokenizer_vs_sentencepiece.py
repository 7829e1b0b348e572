#!/usr/bin/env python3
"""Encoding speed of smoe's tokenizer against the reference SentencePiece library (its C++ core,
called from Python) on about 1 MB of mixed-language text from the test corpus.

  SMOE_BIN=build/smoe /usr/bin/python3 bench/tokenizer_vs_sentencepiece.py [tokenizer.model]
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import make_tokenizer_corpus  # noqa: E402
import sentencepiece  # noqa: E402

model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data", "mistral-tokenizer.v1.model")
lines = make_tokenizer_corpus.build(2500, 20261122)
text = "\n".join(lines)
while len(text.encode()) < 1_000_000:
    text += "\n" + text
text = text.encode()[:1_000_000].decode("utf-8", errors="ignore")

sp = sentencepiece.SentencePieceProcessor(model_file=model)
best = 1e9
for _ in range(3):
    t0 = time.perf_counter()
    n = len(sp.encode(text))
    best = min(best, time.perf_counter() - t0)
print(f"SentencePiece: {len(text.encode())} bytes -> {n} tokens in {best:.3f} s: {len(text.encode()) / best / 1e6:.2f} MB/s")
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write(text)
smoe = os.environ.get("SMOE_BIN", os.path.join(HERE, "..", "build", "smoe"))
print(subprocess.run([smoe, "bench", "--tokenize", f.name, "--tokenizer", model, "-r", "3"],
                     capture_output=True, text=True, check=True).stdout.strip().replace("tokenizer:", "smoe:         "))
os.unlink(f.name)
