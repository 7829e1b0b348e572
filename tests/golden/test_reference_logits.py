"""The engine's logits against an independent numpy reference (scripts/ref_forward.py) on tiny
random Mixtral- and Mistral-style models, in every file format and dtype smoe reads (GGUF merged
and per-expert, HF single and sharded, Mistral folder; F32, F16, BF16: all within 1e-4 of the
float64 reference on the stored weights), with every pre-fill chunking, after the sliding window
has wrapped several times, for head_dim 128, MQA, other top-k and a full context. The reference
checks itself in test_reference_selftest.py."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import Checks, skip, smoe, tiny_model  # noqa: E402

try:
    import numpy as np
except ImportError:
    skip("python3-numpy (the reference's only dependency) is not installed")
import ref_forward as rf  # noqa: E402

c = Checks()


def make(d, *args):
    tiny_model(d, *args)
    return rf.load(d)


def logits(model, ids, *extra):
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        # f32 keys and values unless a test asks for another KV type: the reference keeps f64.
        kv = [] if "--kv-type" in extra else ["--kv-type", "f32"]
        smoe("logits", "-m", model, "--ids", " ".join(map(str, ids)), "--out", f.name, *kv, *extra)
        return np.load(f.name)


def compare(what, got, want, tol):
    err = float(np.abs(got - want).max())
    ok = err <= tol
    c.check(ok, f"{what}: max abs error {err:.3g} > {tol}")
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs error {err:.2e}")
    return got


def ids_for(n, vocab, seed):
    return [int(x) for x in np.random.default_rng(seed).integers(0, vocab, n)]


def rounded_checks(kind, seed, ids, chunks=()):
    """f16 and bf16 copies: every format against the reference on the rounded weights."""
    for dt in ("f16", "bf16"):
        d = os.path.join(tmp, f"{kind}-{dt}")
        hh, ww = make(d, "--kind", kind, "--seed", str(seed), "--dtype", dt)
        r = rf.forward(hh, ww, ids)  # the reference on the rounded weights
        for where, path in (("GGUF", "model.gguf"), ("HF", "hf"), ("Mistral folder", "mistral")):
            compare(f"{kind} {where} {dt}", logits(os.path.join(d, path), ids), r, 1e-4)
        for chunk in chunks:
            compare(f"{kind} GGUF {dt}, chunk {chunk}", logits(os.path.join(d, "model.gguf"), ids, "--chunk", str(chunk)), r, 1e-4)


def kv_type_checks(model, ids, ref, extra):
    """The KV cache's f16 (the default) and q8_0 storage against the f64 reference: near it, and
    not equal to the f32 cache (the test would pass vacuously if the type were ignored)."""
    exact = logits(model, ids, *extra, "--kv-type", "f32")
    scale = float(np.sqrt((ref ** 2).mean()))
    for kv, tol in (("f16", 1e-3), ("q8_0", 1e-2)):  # measured 1.3e-4 and 3.5e-3
        got = logits(model, ids, *extra, "--kv-type", kv)
        err = float(np.sqrt(((got - ref) ** 2).mean())) / scale
        diff = float(np.abs(got - exact).max())
        print(f"     KV {kv}: relative RMS difference from the reference {err:.2e}, max abs {diff:.2e} from f32 KV")
        c.check(err <= tol, f"KV {kv}: logits differ from the reference by {err:.3g} (relative RMS) > {tol}")
        c.check(diff > 0, f"KV {kv}: logits identical to the f32 cache's: the type was not used")


with tempfile.TemporaryDirectory() as tmp:
    # Mixtral-style: 8 experts top-2, GQA; every format and expert layout.
    mx = os.path.join(tmp, "mixtral")
    h, w = make(mx, "--kind", "mixtral", "--seed", "1", "--shards", "2")
    ids = ids_for(40, h["vocab"], 1)
    ref = rf.forward(h, w, ids)
    # The reference's own HF variant: rotate-half RoPE on the q/k rows as the HF folder holds them.
    hh, hw, rope = rf.load_copy(mx, "hf")
    compare("numpy: rotate-half on the HF folder's weights = interleaved on the canonical ones",
            rf.forward(hh, hw, ids, rope=rope), ref, 1e-9)
    g = compare("mixtral GGUF f32", logits(os.path.join(mx, "model.gguf"), ids), ref, 1e-4)
    hf = compare("mixtral HF folder (2 shards)", logits(os.path.join(mx, "hf"), ids), ref, 1e-4)
    compare("mixtral GGUF vs HF copies", hf, g, 1e-5)
    compare("mixtral Mistral folder", logits(os.path.join(mx, "mistral"), ids), ref, 1e-4)
    compare("mixtral GGUF, scalar reference kernels", logits(os.path.join(mx, "model.gguf"), ids, "--reference"), ref, 1e-4)
    compare("mixtral GGUF, 3 threads, chunk 7", logits(os.path.join(mx, "model.gguf"), ids, "-t", "3", "--chunk", "7"), ref, 1e-4)
    compare("mixtral GGUF, chunk 1 (token by token)", logits(os.path.join(mx, "model.gguf"), ids, "--chunk", "1"), ref, 1e-4)
    legacy = os.path.join(tmp, "legacy")
    make(legacy, "--kind", "mixtral", "--seed", "1", "--legacy-experts")
    compare("mixtral GGUF per-expert tensors", logits(os.path.join(legacy, "model.gguf"), ids), ref, 1e-4)
    single = os.path.join(tmp, "single")
    make(single, "--kind", "mixtral", "--seed", "1")
    compare("mixtral HF single file", logits(os.path.join(single, "hf"), ids), ref, 1e-4)
    rounded_checks("mixtral", 1, ids)

    # Mistral-style: dense, sliding window 16; 70 tokens wrap the rolling buffer four times.
    ms = os.path.join(tmp, "mistral")
    h, w = make(ms, "--kind", "mistral", "--seed", "2", "--shards", "3")
    W = h["window"]
    ids = ids_for(70, h["vocab"], 2)
    ref = rf.forward(h, w, ids)
    full = dict(h, window=0)
    c.check(float(np.abs(rf.forward(full, w, ids) - ref).max()) > 1e-3,
            "the window must matter on 70 tokens (else this test proves nothing)")
    for chunk in (1, 3, W - 1, W, W + 1, 70):
        compare(f"mistral GGUF window {W}, chunk {chunk}", logits(os.path.join(ms, "model.gguf"), ids, "--chunk", str(chunk)), ref, 1e-4)
    compare("mistral GGUF, scalar reference kernels, chunk 5", logits(os.path.join(ms, "model.gguf"), ids, "--reference", "--chunk", "5"), ref, 1e-4)
    compare("mistral HF folder (3 shards, sliding_window in config.json), chunk 5", logits(os.path.join(ms, "hf"), ids, "--chunk", "5"), ref, 1e-4)
    compare("mistral Mistral folder (sliding_window in params.json), chunk 17", logits(os.path.join(ms, "mistral"), ids, "--chunk", "17"), ref, 1e-4)
    rounded_checks("mistral", 2, ids, chunks=(W - 1, W + 1))

    # Other shapes: the real models' head_dim 128 with a window of 40 over 100 tokens; MQA with 3 of
    # 4 experts; a whole 256-token context in chunks of 64.
    for name, args, n, extra in (
            ("hd128", ["--kind", "mistral", "--dim", "256", "--n-heads", "2", "--n-kv-heads", "1", "--window", "40",
                       "--layers", "2"], 100, ["--chunk", "9"]),
            ("mqa-top3", ["--kind", "mixtral", "--n-kv-heads", "1", "--experts", "4", "--top-k", "3"], 30, []),
            ("full-context", ["--kind", "mixtral", "--layers", "2"], 256, ["--chunk", "64"])):
        d = os.path.join(tmp, name)
        hv, wv = make(d, *args, "--seed", "5")
        vids = ids_for(n, hv["vocab"], 5)
        vref = rf.forward(hv, wv, vids)
        compare(f"{name}: GGUF {' '.join(extra)}", logits(os.path.join(d, "model.gguf"), vids, *extra), vref, 1e-4)
        if name == "hd128":
            kv_type_checks(os.path.join(d, "model.gguf"), vids, vref, extra)

    # Quantized copies: the integer kernels stay close to the scalar reference on the same quantized
    # weights, and the logits stay near the f32 model's. dim 256 so k-quant blocks fit the rows.
    q = os.path.join(tmp, "wide")
    hq, wq = make(q, "--kind", "mixtral", "--seed", "3", "--dim", "256", "--hidden", "512", "--layers", "2")
    qids = ids_for(24, hq["vocab"], 3)
    qref = rf.forward(hq, wq, qids)
    def rel(a, b):
        return float(np.sqrt(((a - b) ** 2).mean() / (b ** 2).mean()))

    # Bounds: measured on this random model (whose large router weights make it sensitive) with room.
    for qt, tol in (("Q8_0", 0.02), ("Q6_K", 0.06), ("Q5_K_M", 0.25), ("Q4_K_M", 0.35), ("Q4_0", 0.35)):
        out = os.path.join(tmp, f"wide-{qt}.gguf")
        smoe("quantize", os.path.join(q, "model.gguf"), out, "--type", qt, "-q")
        fast = logits(out, qids)
        slow = logits(out, qids, "--reference")
        # Every quantized type takes integer kernels, which quantize the activations to 8 bits:
        # close to the scalar f32 reference, not equal. A token whose router sits on a near-tie may
        # pick another expert, so judge the typical position.
        e = float(np.median([rel(fast[i], slow[i]) for i in range(len(qids))]))
        print(f"     {qt}: integer kernels vs scalar f32 reference, median relative RMS {e:.4f}")
        c.check(e <= 0.06, f"{qt}: integer kernels differ from the reference by {e:.4f}")
        e = rel(fast, qref)
        print(f"     {qt}: relative RMS difference from the f32 model's logits {e:.4f}")
        c.check(e <= tol, f"{qt}: logits differ from the f32 model's by {e:.4f} (relative RMS) > {tol}")

    # smoe info: architecture and parameter counts; a bare config.json of the real Mixtral.
    out = smoe("info", os.path.join(mx, "hf")).stdout
    c.check("mixtral" in out and "8 experts, 2 per token" in out, f"info on the HF folder:\n{out}")
    cfg = os.path.join(tmp, "config.json")
    with open(cfg, "w") as f:
        f.write('{"architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,'
                ' "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,'
                ' "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2,'
                ' "max_position_embeddings": 32768, "rope_theta": 1e6, "sliding_window": null,'
                ' "rms_norm_eps": 1e-5}')
    out = smoe("info", cfg).stdout
    c.check("46.70B total, 12.88B active" in out, f"info on the real Mixtral config:\n{out}")

c.done()
