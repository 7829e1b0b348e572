"""`smoe chat` driven through a pseudo-terminal as a person would: a turn and its streamed
answer, Ctrl-C in the middle of a long answer (the chat goes on), /reset, then /exit."""
import os
import pty
import select
import signal
import subprocess
import sys
import time

from smoe_test import SMOE, SOURCE, Checks, skip

model = os.path.join(SOURCE, "models", "demo.gguf")
if not SMOE:
    skip("SMOE_BIN is not set (run through ctest)")
if not os.path.exists(model):
    skip(f"{model} is missing")

master, slave = pty.openpty()
# --ignore-eos makes every answer run on until stopped: room for a Ctrl-C in the middle.
proc = subprocess.Popen([SMOE, "chat", "-m", model, "--raw", "--temp", "0", "-n", "3000", "-c", "4096",
                         "-t", "1"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
buf = b""
seen = 0  # where the next read_until starts looking: after everything it has found so far


def read_until(needle, timeout=60):
    """Waits for `needle` in output that comes after the last thing found: text already on the
    screen (an earlier prompt, a digit in a statistics line) never counts for a new event."""
    global buf, seen
    end = time.time() + timeout
    while needle.encode() not in buf[seen:] and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                buf += os.read(master, 4096)
            except OSError:
                break
    at = buf.find(needle.encode(), seen)
    if at < 0:
        return False
    seen = at + len(needle)
    return True


def send(text):
    os.write(master, text.encode())


c = Checks()
c.check(read_until("> "), f"no prompt shown: {buf!r}")
send("12+30=\n")
c.check(read_until("42"), f"the answer was not streamed: {buf!r}")
c.check(read_until("> ", 30), f"no prompt after the answer: {buf!r}")
mark = len(buf)
send("/reset\n")
c.check(read_until("[conversation cleared]"), "/reset did not clear")
send("sort 3 1 2=\n")
c.check(read_until("1 2 3"), f"second answer missing: {buf[mark:]!r}")
send("/exit\n")
try:
    proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
c.check(proc.returncode == 0, f"chat exited with {proc.returncode}")
os.close(master)

# Ctrl-C mid-answer: a long answer (EOS ignored) is stopped, the chat continues, Ctrl-D leaves.
master, slave = pty.openpty()
proc = subprocess.Popen([SMOE, "chat", "-m", model, "--raw", "--temp", "0", "--ignore-eos", "-n", "3000",
                         "-c", "4096", "-t", "1"], stdin=slave, stdout=slave, stderr=slave,
                        start_new_session=True)
os.close(slave)
buf, seen = b"", 0
c.check(read_until("> "), "no prompt")
send("sort 9 8 7=\n")
c.check(read_until("7 8 9"), f"no streamed answer: {buf!r}")
os.killpg(proc.pid, signal.SIGINT)
c.check(read_until("[answer stopped]", 30), f"Ctrl-C did not stop the answer: {buf[-300:]!r}")
c.check(proc.poll() is None, "Ctrl-C ended the whole chat")
c.check(read_until("> ", 30), f"no prompt after the stopped answer: {buf[-300:]!r}")
send("417+86=\n")
c.check(read_until("417+86=", 30) and read_until("503", 30), f"no answer after Ctrl-C: {buf[-300:]!r}")
send("\x04")  # Ctrl-D
try:
    proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
c.check(proc.returncode == 0, f"Ctrl-D: exit code {proc.returncode}")
os.close(master)
c.done()
