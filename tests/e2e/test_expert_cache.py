"""Experts cached within a memory budget (--mem-budget) give exactly the logits of the whole model
in memory. A small Mixtral-style model (4 layers of 8 experts, Q4_0) runs with budgets from the smallest that
works (what every token uses and one expert: each expert of a batch is read, used and replaced in
turn) through a few slots and half the experts to more than the model (everything read into
memory); with LRU and LFU eviction, with and without prefetch; one token at a time and as one
pre-fill. Logits must equal those of the same file read into memory bit for bit (the same kernels
on the same bytes): under a budget the weights keep the file's layout, so --no-mmap --no-repack;
with a budget larger than the model everything is read into memory and repacked, so --no-mmap.
A budget below the minimum fails with a message that states the minimum, and `bench --json`
reports the cache's counters consistently (hits + misses = uses, bytes read = misses and
prefetches times an expert's size). A dense model's FFN is cached the same way, one per layer.
`bench --text` drives the cache with a text's tokens: on the demo model, whose learned routing
keeps to a few experts per layer, its held-out problems hit a 12-slot cache more often than random
ids do, and an empty text is a usage error."""
import json
import os
import re
import tempfile

from smoe_test import SOURCE, Checks, logits, skip, smoe, tiny_model

try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed")

c = Checks()


def bench(model, *extra):
    out = smoe("bench", "-m", model, "-p", "8", "-n", "6", "-r", "1", "--json", *extra).stdout
    return json.loads(out)


with tempfile.TemporaryDirectory() as tmp:
    d = os.path.join(tmp, "mixtral")
    tiny_model(d, "--kind", "mixtral", "--dim", "512", "--hidden", "1024", "--n-heads", "8",
               "--n-kv-heads", "4", "--layers", "4", "--vocab", "256", "--seed", "5")
    q4 = os.path.join(tmp, "mixtral-q4_0.gguf")
    smoe("quantize", "-q", "--type", "Q4_0", os.path.join(d, "model.gguf"), q4)
    ids = [int(x) for x in np.random.default_rng(2).integers(1, 256, 20)]

    # The minimum, from the message of a budget below it.
    r = smoe("logits", "-m", q4, "--ids", "1 2", "--out", os.path.join(tmp, "x.npy"), "--mem-budget", "1K",
             check=False)
    m = re.search(r"must be at least [^(]*\((\d+) bytes\)", r.stderr)
    c.check(r.returncode == 1 and m is not None, f"a 1 KiB budget did not fail with the minimum: {r.stderr!r}")
    minimum = int(m.group(1)) if m else 0
    j = bench(q4, "--mem-budget", str(minimum))[0]["expert_cache"]
    slot, resident = j["slot_bytes"], j["resident_bytes"]
    c.check(j["slots"] == 1, f"the minimum budget holds {j['slots']} slots, not 1")
    size = os.path.getsize(q4)
    print(f"minimum budget {minimum} bytes: {resident} resident, slots of {slot} bytes; file {size} bytes")

    budgets = {"minimum": minimum, "3 slots": minimum + 2 * slot, "half": minimum + 15 * slot,
               "all": 2 * size}
    for chunk in ("1", "0"):
        in_memory = logits(q4, ids, "--chunk", chunk, "--no-mmap", "--no-repack")
        repacked = logits(q4, ids, "--chunk", chunk, "--no-mmap")
        for name, b in budgets.items():
            for policy in (["--expert-evict", "lru"], ["--expert-evict", "lfu", "--no-prefetch"]):
                for extra in ([], ["--no-repack"]):
                    want = repacked if name == "all" and not extra else in_memory
                    got = logits(q4, ids, "--chunk", chunk, "--mem-budget", str(b), *policy, *extra)
                    c.check(np.array_equal(got, want),
                            f"budget {name}, chunk {chunk}, {policy} {extra}: logits differ from those in memory by "
                            f"{float(np.abs(got - want).max()):.3g}")

    # The counters add up, per layer and in all.
    for name in ("minimum", "half"):
        for res in bench(q4, "--mem-budget", str(budgets[name])):
            j = res["expert_cache"]
            c.check(j is not None and len(j["layers"]) == 4, f"{name} {res['test']}: no per-layer expert stats")
            for lj in [j] + j["layers"]:
                c.check(lj["hits"] + lj["misses"] == lj["uses"] and lj["uses"] > 0,
                        f"{name} {res['test']}: hits {lj['hits']} + misses {lj['misses']} != uses {lj['uses']}")
                per_expert = slot - 6 * 4096  # an expert's bytes: the slot less its read alignment
                reads = lj["bytes_read"] / per_expert
                c.check(lj["misses"] <= reads <= lj["misses"] + lj["prefetched"] + 1e-9,
                        f"{name} {res['test']}: {lj['bytes_read']} bytes read for {lj['misses']} misses "
                        f"and {lj['prefetched']} prefetches")
            if name == "minimum":
                c.check(j["hit_rate"] < 0.5, f"one slot and a hit rate of {j['hit_rate']}")
    # A dense model's FFN is its layer's one "expert": one slot serves the layers in turn.
    dense = os.path.join(tmp, "mistral")
    dense = tiny_model(dense, "--kind", "mistral", "--layers", "3", "--seed", "7")
    r = smoe("logits", "-m", dense, "--ids", "1 2", "--out", os.path.join(tmp, "x.npy"), "--mem-budget", "1K",
             check=False)
    m = re.search(r"must be at least [^(]*\((\d+) bytes\)", r.stderr)
    c.check(m is not None, f"the dense model's minimum was not stated: {r.stderr!r}")
    if m:
        for chunk in ("1", "0"):
            want = logits(dense, [i % 128 for i in ids], "--chunk", chunk, "--no-mmap", "--no-repack")
            got = logits(dense, [i % 128 for i in ids], "--chunk", chunk, "--mem-budget", m.group(1))
            c.check(np.array_equal(got, want), f"dense model, one slot, chunk {chunk}: logits differ")
    everything = bench(q4, "--mem-budget", str(budgets["all"]))[0]
    c.check(everything["expert_cache"] is None, "a budget larger than the model still cached experts")
    # Real routing (bench --text): the demo model's held-out problems, 12 slots of its 32 experts.
    demo = os.path.join(SOURCE, "models", "demo.gguf")
    with open(os.path.join(SOURCE, "models", "demo", "heldout.jsonl")) as f:
        text = " ".join(json.loads(line)["prompt"] + json.loads(line)["answer"] for line in f)
    text_file = os.path.join(tmp, "demo.txt")
    with open(text_file, "w") as f:
        f.write(text)
    rates = {}
    for src, extra in (("text", ["--text", text_file]), ("random", [])):
        out = smoe("bench", "-m", demo, "-p", "0", "-n", "512", "-r", "1", "--json", "--no-prefetch",
                   "--mem-budget", str(350208 + 12 * 122880), *extra).stdout
        j = json.loads(out)[0]
        c.check(j["tokens"] == ("text " + text_file if src == "text" else "random"),
                f"bench --json says its tokens were {j['tokens']!r}")
        rates[src] = j["expert_cache"]["hit_rate"]
    print(f"demo model, 12 slots: hit rate {rates['text']:.3f} on its text, {rates['random']:.3f} on random ids")
    c.check(rates["text"] > rates["random"] + 0.03,
            f"the text's routing hit the cache no more often than random ids: {rates}")
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").close()
    r = smoe("bench", "-m", demo, "--text", empty, "-n", "4", check=False)
    c.check(r.returncode == 2 and "has no tokens" in r.stderr,
            f"bench --text on an empty file: exit {r.returncode}, {r.stderr!r}")
c.done()
