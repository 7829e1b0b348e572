"""`smoe perplexity` against the rule it claims (llama-perplexity's), computed here in numpy from
the model's own logits (`smoe logits`): the text's tokens (BOS first) cut into whole chunks of
-c tokens, each chunk's first token replaced by BOS, the logits at positions c/2 .. c-2 scoring
the next token; `Final estimate: PPL = x +/- y` with y = PPL·sd/sqrt(n-1). --all-tokens scores
every token after each chunk's first. Then the KL divergence: the base file written with
--kl-divergence-base is read back here by the format's definition (llama-perplexity's), and the
statistics of a Q4_0 copy against it (mean KL, top-1 agreement, both perplexities, Δp) equal the
ones computed here from both models' logits; a model against its own base has KL ~0 and the same
top token everywhere. On the demo model (a trained MoE, so the numbers mean something) and its
held-out problems as the text."""
import json
import os
import re
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import SOURCE, Checks, skip, smoe  # noqa: E402

try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed")

model = os.path.join(SOURCE, "models", "demo.gguf")
heldout = os.path.join(SOURCE, "models", "demo", "heldout.jsonl")
for p in (model, heldout):
    if not os.path.exists(p):
        skip(f"{p} is missing from the checkout")
c = Checks()
N_CTX = 64


def logits(path, ids):
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        smoe("logits", "-m", path, "--ids", " ".join(map(str, ids)), "--out", f.name)
        return np.load(f.name).astype(np.float64)


def log_softmax(lg):
    m = lg.max(axis=-1, keepdims=True)
    return lg - m - np.log(np.exp(lg - m).sum(axis=-1, keepdims=True))


def close(what, got, want, rel):
    ok = abs(got - want) <= rel * max(abs(want), 1e-12)
    c.check(ok, f"{what}: {got} against {want}")
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {got:.6g} (expected {want:.6g})")


def scored(path, ids, bos, all_tokens=False):
    """Per scored token: (log-probabilities of the row, the next token), by the rule."""
    rows, nexts = [], []
    if all_tokens:
        for s in range(0, len(ids) - 1, N_CTX):
            chunk = ids[s:s + N_CTX]
            if len(chunk) < 2:
                break
            lp = log_softmax(logits(path, chunk))
            rows += list(lp[:-1])
            nexts += chunk[1:]
        return np.array(rows), np.array(nexts)
    for k in range(len(ids) // N_CTX):
        chunk = ids[k * N_CTX:(k + 1) * N_CTX]
        lp = log_softmax(logits(path, [bos] + chunk[1:]))
        first = N_CTX // 2
        rows += list(lp[first:N_CTX - 1])
        nexts += chunk[first + 1:]
    return np.array(rows), np.array(nexts)


def ppl_of(rows, nexts):
    nll = -rows[np.arange(len(nexts)), nexts]
    m = nll.mean()
    return np.exp(m), np.exp(m) * np.sqrt((np.mean(nll * nll) - m * m) / (len(nll) - 1)), nll


with tempfile.TemporaryDirectory() as tmp:
    problems = [json.loads(x) for x in open(heldout) if x.strip()][:60]
    text = os.path.join(tmp, "text.txt")
    with open(text, "w") as f:
        f.write("".join(p["prompt"] + p["answer"] + "\n" for p in problems))
    ids = [int(x) for x in smoe("tokenize", "-m", model, "--ids-only", "-p", open(text).read()).stdout.split()]
    bos = ids[0]
    print(f"{len(ids)} tokens, {len(ids) // N_CTX} chunks of {N_CTX}")

    # The default measure, as llama-perplexity.
    r = json.loads(smoe("perplexity", "-m", model, "-f", text, "-c", N_CTX, "--json").stdout)
    rows, nexts = scored(model, ids, bos)
    ppl, err, nll_base = ppl_of(rows, nexts)
    c.check(r["n_scored"] == len(nexts) and r["n_chunks"] == len(ids) // N_CTX, f"scored {r['n_scored']} in {r['n_chunks']}")
    close("perplexity", r["perplexity"], ppl, 1e-5)
    close("its error", r["error"], err, 1e-4)
    out = smoe("perplexity", "-m", model, "-f", text, "-c", N_CTX).stdout
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    c.check(bool(m) and abs(float(m.group(1)) - ppl) < 1e-4 * ppl, f"printed estimate: {out[-200:]}")
    c.check(re.search(r"\[1\][0-9.]+,\[2\][0-9.]+,", out) is not None, "no running values [1]x,[2]y,")

    # Every token after each chunk's first.
    r = json.loads(smoe("perplexity", "-m", model, "-f", text, "-c", N_CTX, "--all-tokens", "--json").stdout)
    rows_all, nexts_all = scored(model, ids, bos, all_tokens=True)
    close("perplexity of every token", r["perplexity"], ppl_of(rows_all, nexts_all)[0], 1e-5)

    # Too short a text: two chunks at least, as llama-perplexity asks.
    short = os.path.join(tmp, "short.txt")
    open(short, "w").write("12+34=46\n")
    e = smoe("perplexity", "-m", model, "-f", short, "-c", N_CTX, check=False)
    c.check(e.returncode == 1 and "needs at least" in e.stderr, f"short text: {e.returncode} {e.stderr}")
    e = smoe("perplexity", "-m", model, "--kl-divergence", check=False)
    c.check(e.returncode == 2 and "--kl-divergence-base" in e.stderr, f"no base: {e.returncode} {e.stderr}")

    # KL divergence of a Q4_0 copy from the f32 demo.
    base = os.path.join(tmp, "base.bin")
    smoe("perplexity", "-m", model, "-f", text, "-c", N_CTX, "--kl-divergence-base", base)
    raw = open(base, "rb").read()
    n_ctx, n_vocab, n_chunk = struct.unpack_from("<Iii", raw, 8)
    c.check(raw[:8] == b"_logits_" and n_ctx == N_CTX and n_chunk == len(ids) // N_CTX, "base header")
    toks = np.frombuffer(raw, dtype=np.int32, count=n_ctx * n_chunk, offset=20)
    c.check(list(toks) == ids[:n_ctx * n_chunk], "base tokens are the text's")
    nv = 2 * ((n_vocab + 1) // 2) + 4
    body = np.frombuffer(raw, dtype=np.uint16, offset=20 + 4 * n_ctx * n_chunk).reshape(-1, nv)
    c.check(body.shape[0] == len(nexts), f"{body.shape[0]} base rows for {len(nexts)} scored tokens")
    head = body[:, :4].copy().view(np.float32)  # scale, min_log_prob
    base_lp = head[:, :1].astype(np.float64) * body[:, 4:4 + n_vocab] + head[:, 1:2]
    resolved = rows > rows.max(axis=1, keepdims=True) - 15.9  # within the 16 nats kept
    err = float(np.abs(base_lp - rows)[resolved].max())
    c.check(err < 1e-3, f"stored log-probabilities {err:.3g} from the model's")

    q4 = os.path.join(tmp, "q4_0.gguf")
    smoe("quantize", "-q", "--type", "Q4_0", model, q4)
    k = json.loads(smoe("perplexity", "-m", q4, "--kl-divergence-base", base, "--kl-divergence", "--json").stdout)
    qrows, qnexts = scored(q4, ids, bos)
    keep = base_lp > -16
    kld = (np.where(keep, np.exp(base_lp) * (base_lp - qrows), 0)).sum(axis=1)
    close("mean KL divergence", k["kld"]["value"], kld.mean(), 1e-3)
    close("median KL divergence", k["kld_percentiles"]["0.500000"], float(np.median(kld)), 1e-2)
    same = (qrows.argmax(axis=1) == base_lp.argmax(axis=1)).mean()
    close("same top token", k["same_top"]["value"], same, 1e-9)
    close("PPL(Q)", k["ppl"]["value"], ppl_of(qrows, qnexts)[0], 1e-5)
    close("PPL(base)", k["ppl_base"]["value"], np.exp(-base_lp[np.arange(len(nexts)), nexts].mean()), 1e-5)
    dp = np.exp(qrows[np.arange(len(nexts)), nexts]) - np.exp(base_lp[np.arange(len(nexts)), nexts])
    close("mean Δp", k["p_diff"]["value"], dp.mean(), 1e-3)
    c.check(k["kld"]["value"] > 1e-4, "a 4-bit copy should differ from f32 measurably")

    own = json.loads(smoe("perplexity", "-m", model, "--kl-divergence-base", base, "--kl-divergence", "--json").stdout)
    c.check(own["kld"]["value"] < 1e-5 and own["same_top"]["value"] == 1.0,
            f"the model against its own base: KL {own['kld']['value']}, same top {own['same_top']['value']}")
    print(f"Q4_0 against f32: KL {k['kld']['value']:.5f}, same top {100 * k['same_top']['value']:.1f}%, "
          f"PPL {k['ppl']['value']:.4f} vs {k['ppl_base']['value']:.4f}")

c.done()
