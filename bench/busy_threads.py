#!/usr/bin/env python3
"""Threads on a busy machine: smoe's default thread count against `-t 1`, on a quiet machine and
beside one busy process (another program keeping a core busy, as on a shared workstation).

For each smoe binary given (--smoe, repeatable: e.g. an older build and the current one) it times
  - the demo model answering its held-out problems (`smoe run --prompts-file`, greedy), and
  - each --model file decoding and pre-filling (`smoe bench -p 64 -n 16 -r 2 --no-mmap`),
with `-t 1` and with the default (one thread per physical core), quiet and with one competitor,
round-robin over --rounds rounds so that the machine's drift hits every configuration alike.
Prints one table: the median wall time (demo) or tokens/s (models) of each configuration.
Standard library only; the competitor is a Python busy loop, stopped at the end.

  /usr/bin/python3 bench/busy_threads.py --smoe build/smoe --model mixtral2l-q4_0.gguf
"""
import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spin(stop):
    while not stop.is_set():
        pass


def demo_seconds(smoe, threads, prompts):
    args = [smoe, "run", "-q", "-n", "8", "--prompts-file", prompts]
    if threads:
        args += ["-t", str(threads)]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_rates(smoe, threads, model):
    args = [smoe, "bench", "-m", model, "--no-mmap", "-p", "64", "-n", "16", "-r", "2", "--json"]
    if threads:
        args += ["-t", str(threads)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return {r["test"]: r["avg_ts"] for r in json.loads(out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoe", action="append", required=True, help="a smoe binary (repeatable)")
    ap.add_argument("--model", action="append", default=[], help="a model file for smoe bench")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with open(os.path.join(SOURCE, "models", "demo", "heldout.jsonl")) as f:
        problems = [json.loads(line)["prompt"] for line in f if line.strip()]
    prompts = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    prompts.write("\n".join(problems) + "\n")
    prompts.close()

    results = {}  # (binary, busy, threads, what) -> [values]
    for _ in range(a.rounds):
        for busy in (False, True):
            stop = multiprocessing.Event()
            competitor = multiprocessing.Process(target=spin, args=(stop,)) if busy else None
            if competitor:
                competitor.start()
                time.sleep(0.5)
            try:
                for smoe in a.smoe:
                    for threads in (1, 0):
                        key = (smoe, busy, threads)
                        results.setdefault(key + ("demo s",), []).append(
                            demo_seconds(smoe, threads, prompts.name))
                        for m in a.model:
                            for test, ts in bench_rates(smoe, threads, m).items():
                                results.setdefault(key + (f"{os.path.basename(m)} {test} tok/s",),
                                                   []).append(ts)
            finally:
                if competitor:
                    stop.set()
                    competitor.join()
    os.unlink(prompts.name)

    whats = sorted({k[3] for k in results}, key=lambda w: (w != "demo s", w))
    print(f"{os.cpu_count()} CPUs, {a.rounds} rounds; median of each configuration "
          "(demo: seconds for its held-out problems, lower is better; models: tokens/s)\n")
    print("| binary | machine | " + " | ".join(f"{w}, -t 1 | default" for w in whats) + " |")
    print("|---|---|" + "---:|---:|" * len(whats))
    for smoe in a.smoe:
        for busy in (False, True):
            cells = []
            for w in whats:
                for threads in (1, 0):
                    v = results.get((smoe, busy, threads, w))
                    cells.append(f"{statistics.median(v):.2f}" if v else "")
            print(f"| {smoe} | {'one busy process' if busy else 'quiet'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
