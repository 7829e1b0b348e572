"""Where `smoe run` and `smoe chat` take their input from, as a new user tries them: a prompt piped
in on standard input is answered (not replaced by the demo's example), `-f -` reads standard input,
and `smoe chat` with no model talks with the demo model and answers right ("417+86=" → "503")."""
import os

from smoe_test import SOURCE, Checks, skip, smoe

c = Checks()
if not os.path.exists(os.path.join(SOURCE, "models", "demo.gguf")):
    skip("models/demo.gguf is absent")

r = smoe("run", "-n", "8", stdin="sort 9 1 5=\n")
c.check(r.stdout.strip() == "sort 9 1 5=1 5 9", f"piped prompt: {r.stdout!r} {r.stderr!r}")
r = smoe("run", "-n", "8", "-f", "-", stdin="417+86=")
c.check(r.stdout.strip() == "417+86=503", f"-f -: {r.stdout!r} {r.stderr!r}")
r = smoe("run", "-n", "8", stdin="")
c.check(r.stdout.strip() == "417+86=503", f"no prompt at all: the demo's example: {r.stdout!r}")
r = smoe("chat", "--temp", "0", stdin="417+86=\n")
c.check("503" in r.stdout and "demo model" in r.stderr,
        f"chat with no model: {r.stdout!r} {r.stderr!r}")
c.done()
