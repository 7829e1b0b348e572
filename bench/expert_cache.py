#!/usr/bin/env python3
"""Decode speed of a model larger than memory: engines side by side, with and without memory held.

Emulates a smaller machine honestly: this machine has no swap, so a helper process that holds N GiB
of touched memory (--hold, comma-separated GiB, 0 for none) leaves only the rest for the page cache
and the engine. For every hold level, each engine runs in turn (--rounds times, round-robin) after
the page cache has been dropped (so no engine inherits another's cached pages), and the script
records:
  - decode tokens/s (`avg_ts` of the engine's JSON: `llama-bench -o json`, `smoe bench --json`),
  - bytes the machine read from disk during the run (/proc/vmstat pgpgin; loading and warm-up
    included) and those per generated token,
  - for smoe with --mem-budget: the expert cache's hit rate, bytes read per token, and the bytes the
    best possible eviction (Belady's, over the same experts in the same order) would have read.

Engines are given as NAME=COMMAND; in a command {model} is the model file, {n} the tokens to
generate, and {budget} the memory the hold level leaves (MemAvailable with the helper holding its
memory, less --reserve GiB for the KV cache, buffers and the system), in bytes. Example:

  sudo /usr/bin/python3 bench/expert_cache.py --model mixtral-full-q4_0.gguf --hold 0,8 --n 16 \\
    --engine "ik_llama.cpp=IK/llama-bench -m {model} -p 0 -n {n} -r 1 -t 2 -o json" \\
    --engine "smoe mmap=build/smoe bench -m {model} -p 0 -n {n} -r 1 -t 2 --json" \\
    --engine "smoe budget=build/smoe bench -m {model} -p 0 -n {n} -r 1 -t 2 --json --mem-budget {budget}" \\
    --json out.json

Needs root (to drop the page cache) and numpy (the helper). Standard library otherwise."""
import argparse
import json
import shlex
import subprocess
import sys
import time

GiB = 1 << 30
HOLDER = """
import sys, time, numpy as np
a = np.ones(int(float(sys.argv[1]) * (1 << 30)), dtype=np.uint8)  # every page touched
print("ready", flush=True)
sys.stdin.read()
"""


def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def pgpgin():
    for line in open("/proc/vmstat"):
        if line.startswith("pgpgin "):
            return int(line.split()[1]) * 1024
    return 0


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def hold(gib):
    if gib <= 0:
        return None
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(gib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit(f"the helper could not hold {gib} GiB")
    return p


def first_json(text):
    start = min([i for i in (text.find("["), text.find("{")) if i >= 0], default=-1)
    return json.loads(text[start:]) if start >= 0 else None


def run(name, command, timeout):
    before, t0 = pgpgin(), time.time()
    try:
        r = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired:
        out, err, rc = "", "timed out", -1
    res = {"engine": name, "command": command, "seconds": time.time() - t0, "read_bytes": pgpgin() - before,
           "rc": rc}
    if rc != 0:
        res["error"] = err.strip().splitlines()[-3:]
        return res
    data = first_json(out)
    rows = data if isinstance(data, list) else [data]
    tg = [x for x in rows if x.get("n_gen", 0) > 0]
    if tg:
        res["tokens_per_s"] = tg[-1]["avg_ts"]
        res["n_gen"] = tg[-1]["n_gen"]
        if tg[-1].get("expert_cache"):
            ec = tg[-1]["expert_cache"]
            res["cache"] = {k: ec.get(k) for k in ("hit_rate", "bytes_read_per_token", "optimal_bytes_read_per_token", "static_bytes_read_per_token",
                                                   "slots", "slot_bytes", "resident_bytes", "wait_s", "prefetched",
                                                   "prefetch_used", "guessed", "guessed_right", "eviction")}
        if "peak_rss_bytes" in tg[-1]:
            res["peak_rss_bytes"] = tg[-1]["peak_rss_bytes"]
    return res


def fmt_row(hold_gib, r):
    gb = r["read_bytes"] / 1e9
    if "tokens_per_s" not in r:
        return f"| {hold_gib} | {r['engine']} | failed: {' '.join(r.get('error', []))[:80]} | | | |"
    per_tok = r["read_bytes"] / max(r["n_gen"], 1) / 1e9
    c = r.get("cache")
    cache = ""
    if c:
        opt, st = c.get("optimal_bytes_read_per_token"), c.get("static_bytes_read_per_token")
        cache = (f"hit {100 * c['hit_rate']:.1f}%, {c['bytes_read_per_token'] / 1e9:.2f} GB/token"
                 + (f" (knowing the future {opt / 1e9:.2f}, knowing use counts {st / 1e9:.2f})"
                    if opt is not None else "")
                 + f", {c['slots']} slots")
    rss = f"{r['peak_rss_bytes'] / GiB:.1f}" if "peak_rss_bytes" in r else ""
    return f"| {hold_gib} | {r['engine']} | {r['tokens_per_s']:.3f} | {gb:.1f} ({per_tok:.2f}/token) | {rss} | {cache} |"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--engine", action="append", required=True, help="NAME=COMMAND")
    ap.add_argument("--hold", default="0", help="GiB of memory to hold, comma-separated levels")
    ap.add_argument("--n", type=int, default=16, help="tokens to generate")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--reserve", type=float, default=1.5, help="GiB kept out of {budget}")
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--json")
    a = ap.parse_args()
    engines = [e.split("=", 1) for e in a.engine]
    results = []
    print("| held GiB | engine | decode tok/s | GB read in the run | peak RSS GiB | expert cache |")
    print("|---|---|---|---|---|---|")
    for level in [float(x) for x in a.hold.split(",")]:
        holder = hold(level)
        try:
            drop_caches()
            budget = int(meminfo("MemAvailable") - a.reserve * GiB)
            for rnd in range(a.rounds):
                for name, cmd in engines:
                    drop_caches()
                    command = cmd.format(model=a.model, n=a.n, budget=budget)
                    print(f"[hold {level} GiB, round {rnd + 1}] {name}: {command}", file=sys.stderr, flush=True)
                    r = run(name, command, a.timeout)
                    r.update(hold_gib=level, round=rnd + 1, budget=budget,
                             mem_available=meminfo("MemAvailable"))
                    results.append(r)
                    print(fmt_row(level, r), flush=True)
        finally:
            if holder:
                holder.stdin.close()
                holder.wait()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
