"""Self-tests of the numpy reference (ref_forward.py), the tiny-model generator and the format
writers, with no smoe binary: properties the math must have, and agreement of every file copy of a
model read back with this folder's own readers.  Run: ref_forward.py --self-test."""
import os
import subprocess
import sys
import tempfile

import numpy as np

import ref_forward as rf
import smoe_formats as sf

HERE = os.path.dirname(os.path.abspath(__file__))


class Results:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what, detail=""):
        ok = bool(ok)
        self.passed += ok
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}")

    def close(self, what, got, want, tol):
        err = float(np.abs(np.asarray(got) - np.asarray(want)).max())
        self.check(err <= tol, what, f"max abs difference {err:.2e} (bound {tol:g})")


def hf_permute(w, n_heads):
    """The HF conversion's q/k row order, written here again from its definition (not imported
    from the generator, whose copy this checks)."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def check_rope(r):
    rng = np.random.default_rng(5)
    hd, theta = 16, 1e4
    q, k = rng.standard_normal((2, 1, hd))
    for name, rope in (("interleaved", rf.rope_interleaved), ("rotate-half", rf.rope_half)):
        r.close(f"RoPE {name}: position 0 is the identity", rope(q, 0, theta), q, 0)
        r.close(f"RoPE {name}: keeps the norm", np.linalg.norm(rope(q, 37, theta)), np.linalg.norm(q), 1e-12)
        # q·k after rotation depends only on the distance between the positions.
        a = float(rope(q, 5, theta)[0] @ rope(k, 2, theta)[0])
        b = float(rope(q, 103, theta)[0] @ rope(k, 100, theta)[0])
        r.close(f"RoPE {name}: q·k depends on the relative position only", a, b, 1e-12)
    # Pair 0 turns by pos radians (freq theta^0 = 1); the last pair by pos·theta^(-(hd-2)/hd).
    e = np.zeros((1, hd))
    e[0, 0] = 1
    got = rf.rope_interleaved(e, np.pi / 2, theta)
    r.close("RoPE interleaved: pair (0, 1) rotates by pos", got[0, :2], [0, 1], 1e-15)
    e = np.zeros((1, hd))
    e[0, hd - 2] = 1
    ang = 3.0 * theta ** (-(hd - 2) / hd)
    got = rf.rope_interleaved(e, 3.0, theta)
    r.close("RoPE interleaved: last pair's frequency theta^(-(hd-2)/hd)", got[0, hd - 2:], [np.cos(ang), np.sin(ang)], 1e-15)
    e = np.zeros((1, hd))
    e[0, hd // 2 - 1] = 1
    got = rf.rope_half(e, 3.0, theta)
    r.close("RoPE rotate-half: pair (hd/2-1, hd-1) has the last frequency",
            got[0, [hd // 2 - 1, hd - 1]], [np.cos(ang), np.sin(ang)], 1e-15)
    # The HF row permutation maps one convention onto the other, head by head.
    x = rng.standard_normal((3, hd))
    perm = hf_permute(np.arange(3 * hd, dtype=np.float64)[:, None], 3)[:, 0].astype(int)
    r.close("RoPE: rotate-half on HF-permuted rows = permuted interleaved",
            rf.rope_half(x.reshape(-1)[perm].reshape(3, hd), 9, theta),
            rf.rope_interleaved(x, 9, theta).reshape(-1)[perm].reshape(3, hd), 1e-13)


def check_blocks(r):
    r.close("RMSNorm of (3, 4) with eps 0", rf.rmsnorm(np.array([3.0, 4.0]), np.array([1.0, 2.0]), 0),
            [3 / np.sqrt(12.5), 8 / np.sqrt(12.5)], 1e-15)
    r.close("SiLU(1) = 1 / (1 + e^-1)", rf.silu(np.array(1.0)), 1 / (1 + np.exp(-1)), 1e-15)
    rng = np.random.default_rng(6)
    d, hid, n = 8, 12, 5
    x = rng.standard_normal((n, d))
    ex = [tuple(rng.standard_normal(s) for s in ((hid, d), (d, hid), (hid, d))) for _ in range(4)]
    router = rng.standard_normal((4, d))
    same = [ex[0]] * 4
    r.close("MoE: identical experts = that expert (gate weights sum to 1)",
            rf.moe(router, same, 2, x), rf.swiglu(*ex[0], x), 1e-12)
    # top-2 by hand for one token: softmax over the two largest router logits only.
    lg = router @ x[0]
    a, b = np.argsort(-lg)[:2]
    wa = 1 / (1 + np.exp(lg[b] - lg[a]))
    want = wa * rf.swiglu(*ex[a], x[:1])[0] + (1 - wa) * rf.swiglu(*ex[b], x[:1])[0]
    r.close("MoE: top-2 weights are the softmax of the two chosen logits", rf.moe(router, ex, 2, x[:1])[0], want, 1e-12)
    # Attention: one key visible → that key's value.
    q, k, v = rng.standard_normal((3, n, 2, 4))
    out = rf.attention(q, k[:, :1], v[:, :1], 1)
    r.close("attention: window 1 returns the token's own value", out[:, 1], v[:, 0], 1e-15)
    r.close("attention: position 0 sees only itself", rf.attention(q, k, v, 0)[0], v[0], 1e-15)


def make(d, *args):
    subprocess.run([sys.executable, os.path.join(HERE, "make_tiny_model.py"), "--out", d, *args], check=True)
    return rf.load(d)


def check_model_files(r, tmp):
    """Every copy the generator writes holds the canonical model."""
    mx = os.path.join(tmp, "mx")
    h, w = make(mx, "--kind", "mixtral", "--seed", "1", "--shards", "2")
    ids = [int(t) for t in np.random.default_rng(1).integers(0, h["vocab"], 24)]
    ref = rf.forward(h, w, ids)
    c = [tuple(w[f"layers.{l}.attention.{m}.weight"] for l in range(h["n_layers"])) for m in ("wq", "wk")]
    hw = dict(w)
    for l in range(h["n_layers"]):
        hw[f"layers.{l}.attention.wq.weight"] = hf_permute(c[0][l], h["n_heads"])
        hw[f"layers.{l}.attention.wk.weight"] = hf_permute(c[1][l], h["n_kv_heads"])
    r.close("rotate-half RoPE on HF-permuted q/k (k with the KV head count) = interleaved",
            rf.forward(h, hw, ids, rope=rf.rope_half), ref, 1e-10)
    for which in ("gguf", "hf", "mistral"):
        hh, ww, rope = rf.load_copy(mx, which)
        diff = {k: (hh[k], v) for k, v in h.items() if k != "context" and abs(hh[k] - v) > 1e-6 * abs(v)}
        r.check(not diff, f"mixtral {which} copy: hyper-parameters from its own metadata = ref.json", str(diff))
        # 1e-9: the GGUF holds eps as float32.
        r.close(f"mixtral {which} copy read back = weights.npz", rf.forward(hh, ww, ids, rope=rope), ref, 1e-9)
    leg = os.path.join(tmp, "legacy")
    make(leg, "--kind", "mixtral", "--seed", "1", "--legacy-experts")
    _, t = sf.read_gguf(os.path.join(leg, "model.gguf"))
    r.check("blk.0.ffn_gate.3.weight" in t and not any("_exps" in n for n in t), "legacy GGUF has per-expert tensors")
    r.close("mixtral legacy GGUF read back = weights.npz", rf.forward(h, rf.load_gguf(os.path.join(leg, "model.gguf")), ids), ref, 1e-12)
    # Routing must be non-trivial, or the MoE tests prove little.
    for l in range(h["n_layers"]):
        xn = rf.rmsnorm(w["tok_embeddings.weight"][ids].astype(np.float64), 1.0, 1e-5)
        pairs = {tuple(sorted(np.argsort(-(w[f"layers.{l}.feed_forward.gate.weight"] @ x))[:2])) for x in xn}
        r.check(len(pairs) >= 6, f"layer {l}: tokens choose {len(pairs)} different expert pairs (want ≥ 6)")
    r.check(0.3 < float(np.abs(ref).std()) < 10, "logits are O(1)", f"std {float(ref.std()):.3f}")
    r.close("causal: the first 10 positions ignore later tokens", rf.forward(h, w, ids[:10]), ref[:10], 1e-12)
    for dt in ("f16", "bf16"):
        dd = os.path.join(tmp, dt)
        h2, w2 = make(dd, "--kind", "mixtral", "--seed", "1", "--dtype", dt)
        r2 = rf.forward(h2, w2, ids)
        for which in ("gguf", "hf", "mistral"):
            hh, ww, rope = rf.load_copy(dd, which)
            r.close(f"mixtral {dt} {which} copy read back = rounded weights.npz", rf.forward(hh, ww, ids, rope=rope), r2, 1e-9)
        r.check(float(np.abs(r2 - ref).max()) > 1e-6, f"{dt} rounding changes the logits (else the dtype did not apply)")


def check_real_shape_writer(r, tmp):
    """The streaming benchmark writer, on small shapes: a complete model the reference can run."""
    import make_tiny_model as mk
    for kind in ("mixtral", "mistral"):
        h = dict(mk.REAL[kind], dim=64, n_heads=4, n_kv_heads=2, hidden=96, vocab=50, n_layers=2)
        p = os.path.join(tmp, f"real-{kind}.gguf")
        mk.write_real_shape(p, h, "f16", 3, slice_values=1000)
        meta, t = sf.read_gguf(p)
        w = rf.load_gguf(p)
        hh = rf.config_gguf(p)
        exps = t.get("blk.1.ffn_down_exps.weight")
        same = all(abs(hh[k] - h[k]) <= 1e-6 * abs(h[k]) for k in hh)  # eps is held as float32
        r.check(same and (exps is None) == (kind == "mistral")
                and (kind == "mistral" or exps.shape == (8, 64, 96)), f"real-shape writer ({kind}): metadata and shapes")
        r.check(abs(float(t["blk.0.attn_q.weight"].std()) - 0.02) < 0.002, f"real-shape writer ({kind}): weights have std 0.02")
        logits = rf.forward(hh, w, [1, 2, 3])
        r.check(np.isfinite(logits).all(), f"real-shape writer ({kind}): the reference runs on it")


# ---- Quantized types: smoe's dequantizers (src/quant/dequantize.cpp) transcribed loop for loop,
# one block at a time, to check the vectorised numpy quantizers and dequantizers against. ----

def _f16(b, i):
    return float(np.frombuffer(bytes(b[i:i + 2]), "<f2")[0])


def _k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def dequant_block(t, b):
    """One block's bytes → its values, as smoe's scalar dequantizer computes them."""
    b = [int(v) for v in b]
    y = []
    if t == "q4_0":
        d, qs = _f16(b, 0), b[2:18]
        y = [0.0] * 32
        for j in range(16):
            y[j], y[j + 16] = d * ((qs[j] & 0xF) - 8), d * ((qs[j] >> 4) - 8)
    elif t == "q8_0":
        d = _f16(b, 0)
        y = [d * (v - 256 if v > 127 else v) for v in b[2:34]]
    elif t == "q2_k":
        scales, qs, d, dmin = b[0:16], b[16:80], _f16(b, 80), _f16(b, 82)
        i = 0
        for half in range(2):
            q = qs[32 * half:]
            for shift in range(0, 8, 2):
                for part in range(2):
                    sc = scales[i]
                    i += 1
                    y += [d * (sc & 0xF) * ((q[l + 16 * part] >> shift) & 3) - dmin * (sc >> 4) for l in range(16)]
    elif t == "q3_k":
        hmask, qs, s, d = b[0:32], b[32:96], b[96:108], _f16(b, 108)
        sc = [((s[j] & 0xF) if j < 8 else (s[j - 8] >> 4)) | (((s[8 + j % 4] >> (2 * (j // 4))) & 3) << 4) for j in range(16)]
        i, m = 0, 1
        for half in range(2):
            q = qs[32 * half:]
            for shift in range(0, 8, 2):
                for part in range(2):
                    dl = d * (sc[i] - 32)
                    i += 1
                    y += [dl * (((q[l + 16 * part] >> shift) & 3) - (0 if hmask[l + 16 * part] & m else 4)) for l in range(16)]
                m <<= 1
    elif t in ("q4_k", "q5_k"):
        d, dmin, s = _f16(b, 0), _f16(b, 2), b[4:16]
        qh, qs = (None, b[16:144]) if t == "q4_k" else (b[16:48], b[48:176])
        for j in range(0, 8, 2):
            q = qs[16 * j:]
            (s0, m0), (s1, m1) = _k4(j, s), _k4(j + 1, s)
            hi = (lambda l, k: ((qh[l] >> k) & 1) << 4) if qh else (lambda l, k: 0)
            y += [d * s0 * ((q[l] & 0xF) + hi(l, j)) - dmin * m0 for l in range(32)]
            y += [d * s1 * ((q[l] >> 4) + hi(l, j + 1)) - dmin * m1 for l in range(32)]
    elif t == "q6_k":
        ql, qh, d = b[0:128], b[128:192], _f16(b, 208)
        sc = [v - 256 if v > 127 else v for v in b[192:208]]
        y = [0.0] * 256
        for n in range(2):
            for l in range(32):
                is_ = 8 * n + l // 16
                L, H, o = ql[64 * n:], qh[32 * n:], 128 * n
                y[o + l] = d * sc[is_] * (((L[l] & 0xF) | (((H[l] >> 0) & 3) << 4)) - 32)
                y[o + l + 32] = d * sc[is_ + 2] * (((L[l + 32] & 0xF) | (((H[l] >> 2) & 3) << 4)) - 32)
                y[o + l + 64] = d * sc[is_ + 4] * (((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32)
                y[o + l + 96] = d * sc[is_ + 6] * (((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32)
    return np.array(y, np.float64)


# Relative RMS error of the simple quantizers on normal values (measured: Q8_0 0.005, Q6_K 0.019,
# Q5_K 0.039, Q4_K 0.080, Q4_0 0.086, Q3_K 0.155, Q2_K 0.356).
QUANT_ERROR = {"q8_0": 0.01, "q6_k": 0.03, "q5_k": 0.06, "q4_k": 0.12, "q4_0": 0.12, "q3_k": 0.22, "q2_k": 0.45}


def check_quantizers(r):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(1 << 18) * 0.02).astype(np.float32)
    for t, (_, bs, bb) in sf.QUANT.items():
        q = sf.quantize(x, t)
        y = sf.dequantize(q, t)
        ok = q.shape == (x.size // bs, bb)
        ref = np.concatenate([dequant_block(t, q[i]) for i in range(3)])
        r.close(f"{t}: numpy dequantizer = smoe's loops (3 blocks of numpy-quantized values)", y[:3 * bs], ref, 1e-12)
        raw = rng.integers(0, 256, (2, bb), dtype=np.uint8)  # any codes and scales, finite half scales
        for o in {"q4_0": (0,), "q8_0": (0,), "q2_k": (80, 82), "q3_k": (108,), "q6_k": (208,)}.get(t, (0, 2)):
            raw[:, o: o + 2] = np.frombuffer(np.float16(rng.uniform(-0.1, 0.1)).tobytes(), np.uint8)
        ref = np.concatenate([dequant_block(t, raw[i]) for i in range(2)])
        r.close(f"{t}: numpy dequantizer = smoe's loops (2 blocks of random bytes)", sf.dequantize(raw, t), ref, 1e-12)
        rel = float(np.sqrt(((y - x) ** 2).mean()) / x.std())
        bias = float((y - x).mean())
        r.check(ok and rel <= QUANT_ERROR[t], f"{t}: quantizer round trip", f"relative RMS error {rel:.4f} (bound {QUANT_ERROR[t]})")
        r.check(abs(bias) < 0.005 * 0.02, f"{t}: quantizer is unbiased", f"mean error {bias:+.1e} (bound 1e-4)")
        if t in ("q4_0", "q8_0", "q3_k", "q6_k"):  # symmetric grids (the others have a min)
            r.check(np.array_equal(sf.dequantize(sf.quantize(-x, t), t), -y), f"{t}: −x quantizes to the mirror image of x")


def check_quantized_real_shape(r, tmp):
    """The streaming writer in quantized types, on small shapes whose rows are whole k-quant
    blocks: the types smoe's converter would choose, and weights of mean 0 and std 0.02 after
    dequantization (a common offset would send every token of a layer to one expert)."""
    import make_tiny_model as mk
    for kind, types in (("mixtral", ("q4_0", "q8_0", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m")), ("mistral", ("q4_0", "q3_k_m"))):
        for dt in types:
            h = dict(mk.REAL[kind], dim=256, n_heads=4, n_kv_heads=2, hidden=512, vocab=64, n_layers=2)
            p = os.path.join(tmp, f"real-{kind}-{dt}.gguf")
            mk.write_real_shape(p, h, dt, 3, slice_values=1 << 15)
            types_ = {}
            _, t = sf.read_gguf(p, types_)
            base, mix = mk.parse_type(dt)
            want = {n: "f32" if t[n].ndim == 1 or "gate_inp" in n else
                    "q6_k" if mix and ("output.weight" == n or n in ("blk.1.attn_v.weight", "blk.1.ffn_down_exps.weight",
                                                                      "blk.1.ffn_down.weight")) else base for n in t}
            bad = {n: (types_[n], want[n]) for n in t if types_[n] != want[n]}
            r.check(not bad, f"real-shape {kind} {dt}: tensor types as smoe's converter chooses", str(bad))
            ws = [a.reshape(-1) for n, a in t.items() if a.ndim > 1 and "gate_inp" not in n]
            means = [abs(float(a.mean())) / float(a.std()) for a in ws]
            allw = np.concatenate(ws)
            m, s = float(allw.mean()), float(allw.std())
            r.check(abs(m) < 2e-4 and abs(s - 0.02) < 0.003 and max(means) < 0.05,  # Q2_K's error adds 10 %
                    f"real-shape {kind} {dt}: weights dequantize to mean 0, std 0.02",
                    f"mean {m:+.1e}, std {s:.4f}, largest |tensor mean| / std {max(means):.3f}")
            if dt == "q4_0":
                logits = rf.forward(rf.config_gguf(p), rf.load_gguf(p), [1, 2, 3])
                r.check(np.isfinite(logits).all(), f"real-shape {kind} {dt}: the reference runs on it")


def check_window_gqa(r, tmp):
    ms = os.path.join(tmp, "ms")
    h, w = make(ms, "--kind", "mistral", "--seed", "2")
    for which in ("gguf", "hf", "mistral"):
        hh, ww, rope = rf.load_copy(ms, which)
        r.check(hh["window"] == 16 and hh["n_experts"] == 0, f"mistral {which} copy: dense, window 16")
        ids = [int(t) for t in np.random.default_rng(2).integers(0, h["vocab"], 40)]
        r.close(f"mistral {which} copy read back = weights.npz", rf.forward(hh, ww, ids, rope=rope), rf.forward(h, w, ids), 1e-9)
    ids = [int(t) for t in np.random.default_rng(3).integers(0, h["vocab"], 40)]
    full = rf.forward(dict(h, window=0), w, ids)
    r.close("window ≥ length = full attention", rf.forward(dict(h, window=40), w, ids), full, 1e-12)
    r.close("window ≥ length = full attention (window 1000)", rf.forward(dict(h, window=1000), w, ids), full, 1e-12)
    win = rf.forward(h, w, ids)
    r.close("window 16: positions < 16 equal full attention", win[:16], full[:16], 1e-12)
    r.check(float(np.abs(win[16] - full[16]).max()) > 1e-6, "window 16: position 16 no longer sees position 0")
    r.check(float(np.abs(win[16:] - full[16:]).max()) > 1e-3, "window 16: later positions differ from full attention")
    # GQA: 2 KV heads shared by pairs of query heads = 4 KV heads holding copies.
    hd = h["dim"] // h["n_heads"]
    w4 = dict(w)
    for l in range(h["n_layers"]):
        for m in ("wk", "wv"):
            a = w[f"layers.{l}.attention.{m}.weight"].reshape(h["n_kv_heads"], hd, -1)
            w4[f"layers.{l}.attention.{m}.weight"] = np.repeat(a, h["n_heads"] // h["n_kv_heads"], axis=0).reshape(h["n_heads"] * hd, -1)
    r.close("GQA: query head h reads KV head h // group", rf.forward(dict(h, n_kv_heads=h["n_heads"]), w4, ids), win, 1e-12)


def check_formats(r, tmp):
    g = sf.GGUFWriter()
    vals = [("a.u8", sf.UINT8, 200), ("a.i8", sf.INT8, -100), ("a.u16", sf.UINT16, 60000), ("a.i16", sf.INT16, -30000),
            ("a.u32", sf.UINT32, 4_000_000_000), ("a.i32", sf.INT32, -2_000_000_000), ("a.f32", sf.FLOAT32, 0.5),
            ("a.bool", sf.BOOL, True), ("a.str", sf.STRING, "héllo ▁x"), ("a.u64", sf.UINT64, 2 ** 63 + 5),
            ("a.i64", sf.INT64, -(2 ** 62)), ("a.f64", sf.FLOAT64, 1e-300)]
    for k, t, v in vals:
        g.add(k, t, v)
    g.strings("a.strs", ["", "x", "▁the", "<0x0A>"])
    g.ints("a.ints", [-1, 0, 7])
    g.floats("a.floats", [0.25, -1.5])
    g.add("a.nested", sf.ARRAY, [[1, 2], [3]], (sf.ARRAY, sf.UINT8))
    rng = np.random.default_rng(7)
    arrs = {"t.f32": (rng.standard_normal((3, 5)), "f32"), "t.f16": (rng.standard_normal((2, 3, 7)), "f16"),
            "t.bf16": (rng.standard_normal(9), "bf16")}
    for n, (a, dt) in arrs.items():
        g.tensor(n, a, dt)
    g.tensor_lazy("t.lazy", (4, 6), "f16", lambda: iter([np.arange(12).reshape(2, 6), np.arange(12, 24).reshape(2, 6)]))
    p = os.path.join(tmp, "all.gguf")
    g.write(p)
    meta, t = sf.read_gguf(p)
    r.check(all(meta[k] == (ty, v) for k, ty, v in vals if ty != sf.FLOAT32) and meta["a.f32"][1] == 0.5,
            "GGUF: every scalar metadata type reads back")
    r.check(meta["a.strs"][1] == ["", "x", "▁the", "<0x0A>"] and meta["a.ints"][1] == [-1, 0, 7]
            and meta["a.floats"][1] == [0.25, -1.5] and meta["a.nested"][1] == [[1, 2], [3]], "GGUF: arrays read back")
    r.check(meta["general.alignment"] == (sf.UINT32, 32), "GGUF: general.alignment is 32")
    for n, (a, dt) in arrs.items():
        r.close(f"GGUF: tensor {dt} {a.shape} reads back", t[n], sf.round_trip(a, dt), 0)
    r.close("GGUF: a streamed tensor reads back", t["t.lazy"], np.arange(24).reshape(4, 6), 0)
    raw = open(p, "rb").read()
    # The (3, 5) f32 tensor is listed with ne = [5, 3]: innermost first.
    i = raw.index(b"t.f32") + 5
    r.check(raw[i: i + 4 + 16] == np.array([2], "<u4").tobytes() + np.array([5, 3], "<u8").tobytes(),
            "GGUF: dimensions are listed innermost first")
    ga = sf.GGUFWriter(alignment=64)
    ga.tensor("x", np.ones(3), "f32")
    ga.tensor("y", np.ones(5), "f16")
    ga.write(p)
    meta, t = sf.read_gguf(p)
    r.check(meta["general.alignment"][1] == 64 and t["y"].tolist() == [1] * 5, "GGUF: alignment 64 round trip")
    s = os.path.join(tmp, "x.safetensors")
    data = {"b": rng.standard_normal((4, 3)), "a": rng.standard_normal(5)}
    for dt in ("f32", "f16", "bf16"):
        sf.write_safetensors(s, data, dt, metadata={"format": "pt"})
        meta, t = sf.read_safetensors(s)
        raw = open(s, "rb").read()
        r.check(meta == {"format": "pt"} and (8 + int.from_bytes(raw[:8], "little")) % 8 == 0,
                f"safetensors {dt}: metadata and 8-byte aligned header")
        r.check(all(np.array_equal(t[n], sf.round_trip(a, dt)) for n, a in data.items()), f"safetensors {dt}: tensors read back")
    bits = sf.to_bf16(np.array([1.0, 1.00390625, 1.01171875, -2.0], np.float32))
    r.check(bits.tolist() == [0x3F80, 0x3F80, 0x3F82, 0xC000], "bf16 rounds to nearest even", str([hex(b) for b in bits]))


def main():
    r = Results()
    check_rope(r)
    check_blocks(r)
    with tempfile.TemporaryDirectory() as tmp:
        check_formats(r, tmp)
        check_model_files(r, tmp)
        check_window_gqa(r, tmp)
        check_real_shape_writer(r, tmp)
        check_quantizers(r)
        check_quantized_real_shape(r, tmp)
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
