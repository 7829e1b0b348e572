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
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
