"""A real pretrained model speaks: stories260K (llama2.c format) must reproduce the reference
implementation's greedy text exactly (see ../shared/data/README.md)."""
import os
import tempfile

from smoe_test import Checks, shared, smoe

EXPECTED = """Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily's mom said, "Lily, let's go to the park." Lily was sad and didn't know what to do. She said, "I want to play with your ball, but I can't find it."
Lily was sad and didn't know what to do. She said, "I'm sorry, Lily. I didn't know what to do."
Lily didn't want to help her mom, so she
"""

model = shared("stories260K.bin")
tok = shared("tok512.bin")
c = Checks()

# The exact command from the issue: prompt echoed, continuation, one final newline.
r = smoe("run", "-m", model, "--tokenizer", tok, "-p", "Once upon a time", "-n", 196)
c.check(r.stdout == EXPECTED, f"run output differs:\n{r.stdout!r}\nexpected\n{EXPECTED!r}")

# The same through smoe convert to GGUF (tokenizer embedded), and with several threads.
with tempfile.TemporaryDirectory() as d:
    gguf = os.path.join(d, "stories260K.gguf")
    smoe("convert", model, gguf, "--tokenizer", tok)
    for threads in (1, 2, 3):
        r = smoe("run", "-m", gguf, "-p", "Once upon a time", "-n", 196, "-t", threads, "-q")
        c.check(r.stdout == EXPECTED, f"GGUF run with {threads} threads differs:\n{r.stdout!r}")
    r = smoe("tokenize", "-m", gguf, "--ids-only", "-p", "Once upon a time")
    c.check(r.stdout.split() == ["1", "403", "407", "261", "378"], f"tokenize: {r.stdout!r}")

c.done()
