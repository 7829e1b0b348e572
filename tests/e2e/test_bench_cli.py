"""`smoe bench`'s table and `--bandwidth` on a small Mixtral-style model: one row per test with a
mean ± sd, the read bandwidth alone, and decode's share of the roofline, where each repetition is
set against a bandwidth read right after it: the line names how many repetitions, and the median
share lies within the range it prints and agrees with the table's tokens/s, the bytes read per
token and the bandwidth it states. Pre-fill has no roofline line."""
import os
import re
import tempfile

from smoe_test import Checks, smoe, tiny_model

c = Checks()

with tempfile.TemporaryDirectory() as tmp:
    d = os.path.join(tmp, "mixtral")
    model = tiny_model(d, "--kind", "mixtral", "--dim", "256", "--hidden", "512", "--n-heads", "4",
                       "--n-kv-heads", "2", "--layers", "2", "--vocab", "256", "--seed", "5")

    alone = smoe("bench", "--bandwidth", "-t", "1").stdout
    m = re.search(r"read bandwidth: ([0-9.]+) GB/s \(1 threads\)", alone)
    c.check(m is not None and float(m.group(1)) > 0, f"bandwidth alone:\n{alone}")

    out = smoe("bench", "-m", model, "--no-mmap", "-p", "8", "-n", "6", "-r", "3", "-t", "1",
               "--bandwidth").stdout
    rows = dict(re.findall(r"^\| (pp8|tg6) +\| +([0-9.]+) ± +[0-9.]+ \|$", out, re.M))
    c.check(set(rows) == {"pp8", "tg6"}, f"table rows:\n{out}")
    per_token = re.search(r"weights read per decoded token: ([0-9.]+) (KiB|MiB|GiB)", out)
    c.check(per_token is not None, f"bytes per token missing:\n{out}")
    roof = re.findall(r"^(\w+): ([0-9.]+)% of the bandwidth roofline \(median of (\d+) repetitions, "
                      r"each against the bandwidth read right after it: ([0-9.]+)–([0-9.]+)%; "
                      r"([0-9.]+) tok/s at ([0-9.]+) GB/s, the median\)$", out, re.M)
    c.check(len(roof) == 1 and roof[0][0] == "tg6", f"one roofline line, for decode:\n{out}")
    if roof and per_token:
        _, share, reps, lo, hi, tok_s, gbs = roof[0]
        share, lo, hi, tok_s, gbs = map(float, (share, lo, hi, tok_s, gbs))
        c.check(reps == "3", f"{reps} repetitions named, 3 run")
        c.check(0 < lo <= share <= hi, f"median {share}% outside {lo}–{hi}%")
        unit = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[per_token.group(2)]
        bytes_per_token = float(per_token.group(1)) * unit
        # The roofline's tokens/s is the median bandwidth over the bytes per token (printed rounded).
        c.check(abs(tok_s - gbs * 1e9 / bytes_per_token) <= 0.01 * tok_s + 0.1,
                f"{tok_s} tok/s is not {gbs} GB/s over {bytes_per_token:.0f} bytes")
        # The mean tokens/s over the median roofline lies within the per-repetition range, loosely
        # (the mean of 3 and the medians of two lists need not coincide).
        mean_share = 100 * float(rows.get("tg6", 0)) / tok_s
        c.check(0.5 * lo <= mean_share <= 2 * hi, f"mean share {mean_share:.1f}% against {lo}–{hi}%")

c.done()
