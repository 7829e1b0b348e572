"""`smoe passkey` builds prompts of exactly the length asked for, with the key at depths spread
evenly from the start to the end of the filler, and reports every trial's time and pre-fill
speed and the peak memory; a length too short to hold the prompt is a usage error. (Without
--length it fills the model's whole context: 32k positions of the demo take minutes, so that is
measured in docs/measurements.md, not here.) (The demo model was never taught to retrieve a key: this
checks the measurement, not the model.)"""
import os
import re

from smoe_test import SOURCE, Checks, skip, smoe

model = os.path.join(SOURCE, "models", "demo.gguf")
if not os.path.exists(model):
    skip(f"{model} is missing from the checkout")
c = Checks()

out = smoe("passkey", "-m", model, "--length", "400", "--trials", "5").stdout
print(out)
trials = re.findall(r"trial (\d): (\d+) tokens, key at depth +(\d+)%: (found|missed).*, ([0-9.]+) s, pre-fill ([0-9.]+) tok/s", out)
c.check(len(trials) == 5, f"{len(trials)} trial lines")
c.check(all(int(t[1]) == 400 for t in trials), "a prompt is not 400 tokens long")
c.check([int(t[2]) for t in trials] == [0, 25, 50, 75, 100], f"depths {[t[2] for t in trials]}")
c.check(all(float(t[5]) > 0 for t in trials), "no pre-fill speed")
m = re.search(r"passkey retrieval: (\d)/5 at 400 tokens, ([0-9.]+) s per trial, peak memory ([0-9.]+ [KMG]i?B)", out)
c.check(m is not None, "no summary line with the time per trial and the peak memory")

e = smoe("passkey", "-m", model, "--length", "20", check=False)
c.check(e.returncode == 2 and "shorter than" in e.stderr, f"too short: {e.returncode} {e.stderr}")
c.done()
