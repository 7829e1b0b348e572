#!/usr/bin/env python3
"""An independent float64 numpy reference of the Mixtral / Mistral forward pass, written from the
papers' math (not from smoe's C++): the logits at every position of a token sequence.

  ref_forward.py DIR --ids "1 5 9" [--out logits.npy] [--from gguf|hf|mistral|npz]
  ref_forward.py --self-test

DIR comes from make_tiny_model.py: ref.json (hyper-parameters) and weights.npz (canonical weights,
Mistral names, interleaved-pair RoPE layout), and the same model as model.gguf, hf/ and mistral/;
--from reads one of those copies with this module's own small readers instead of weights.npz.

The math, per layer l:  x += Wo · attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n) with n = RMSNorm(x, attention_norm);
x += FFN(RMSNorm(x, ffn_norm)); logits = Wout · RMSNorm(x, norm).  RMSNorm(x) = x / sqrt(mean(x²) + eps) · w.
RoPE rotates pair j of a head (elements 2j, 2j+1; or j, j + hd/2 for HF's rotate-half layout) by
angle pos · theta^(-2j/hd). Query head h reads KV head h // (n_heads / n_kv_heads); a query at
position p attends to keys at positions max(0, p-W+1)..p (W = sliding window, 0 = unbounded) with
softmax(q·k / sqrt(hd)). FFN: SwiGLU W2 (silu(W1 n) * (W3 n)); MoE: router logits Wg n, the top-k
experts, softmax over those k logits, y = sum_i w_i expert_i(n).
"""
import argparse
import json
import os
import re
import sys

import numpy as np


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _angles(hd, pos, theta):
    freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)  # theta^(-2j/hd), j < hd/2
    a = pos * freq
    return np.cos(a), np.sin(a)


def rope_interleaved(x, pos, theta):
    """x: (heads, hd). Rotates pairs (2j, 2j+1) by pos·theta^(-2j/hd) (GGUF / Mistral layout)."""
    c, s = _angles(x.shape[-1], pos, theta)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def rope_half(x, pos, theta):
    """Rotate-half RoPE (HF's convention): pairs (j, j + hd/2)."""
    hd = x.shape[-1]
    c, s = _angles(hd, pos, theta)
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def attention(q, k, v, window):
    """q: (n, nh, hd), k, v: (n, nkv, hd) already rotated. Causal, optionally windowed."""
    n, nh, hd = q.shape
    group = nh // k.shape[1]
    out = np.zeros_like(q)
    for i in range(n):
        lo = max(0, i - window + 1) if window else 0
        for head in range(nh):
            kv = head // group
            s = k[lo: i + 1, kv] @ q[i, head] / np.sqrt(hd)
            s = np.exp(s - s.max())
            out[i, head] = (s / s.sum()) @ v[lo: i + 1, kv]
    return out


def swiglu(w1, w2, w3, x):
    """x: (n, d) → (n, d)."""
    return (silu(x @ w1.T) * (x @ w3.T)) @ w2.T


def moe(router, experts, top_k, x):
    """router: (E, d); experts: list of (w1, w2, w3); x: (n, d). Softmax over the top-k logits."""
    logits = x @ router.T
    y = np.zeros_like(x)
    for i in range(x.shape[0]):
        top = np.argsort(-logits[i], kind="stable")[:top_k]
        wts = np.exp(logits[i, top] - logits[i, top].max())
        wts /= wts.sum()
        for e, wt in zip(top, wts):
            y[i] += wt * swiglu(*experts[e], x[i: i + 1])[0]
    return y


def forward(h, w, ids, rope=rope_interleaved):
    """h: hyper-parameters (ref.json), w: canonical weights (Mistral names; q/k rows in the layout
    `rope` expects), ids: token ids. Returns the logits (len(ids), vocab) in float64."""
    g = lambda k: np.asarray(w[k], dtype=np.float64)  # noqa: E731
    d, nh, nkv = h["dim"], h["n_heads"], h["n_kv_heads"]
    hd, eps, theta = d // nh, h.get("norm_eps", 1e-5), h["rope_theta"]
    n = len(ids)
    x = g("tok_embeddings.weight")[np.asarray(ids)]  # (n, d)
    for l in range(h["n_layers"]):
        p = f"layers.{l}."
        xn = rmsnorm(x, g(p + "attention_norm.weight"), eps)
        q = (xn @ g(p + "attention.wq.weight").T).reshape(n, nh, hd)
        k = (xn @ g(p + "attention.wk.weight").T).reshape(n, nkv, hd)
        v = (xn @ g(p + "attention.wv.weight").T).reshape(n, nkv, hd)
        q = np.stack([rope(q[i], i, theta) for i in range(n)])
        k = np.stack([rope(k[i], i, theta) for i in range(n)])
        att = attention(q, k, v, h.get("window") or 0)
        x = x + att.reshape(n, nh * hd) @ g(p + "attention.wo.weight").T
        xn = rmsnorm(x, g(p + "ffn_norm.weight"), eps)
        f = p + "feed_forward."
        if h["n_experts"]:
            experts = [tuple(g(f + f"experts.{e}.{m}.weight") for m in ("w1", "w2", "w3"))
                       for e in range(h["n_experts"])]
            x = x + moe(g(f + "gate.weight"), experts, h["top_k"], xn)
        else:
            x = x + swiglu(g(f + "w1.weight"), g(f + "w2.weight"), g(f + "w3.weight"), xn)
    return rmsnorm(x, g("norm.weight"), eps) @ g("output.weight").T


# ---- Reading the generator's files (own readers, own name tables) ----

def load(folder):
    """(hyper-parameters, canonical weights) from make_tiny_model.py's ref.json + weights.npz."""
    with open(os.path.join(folder, "ref.json")) as f:
        h = json.load(f)
    return h, dict(np.load(os.path.join(folder, "weights.npz")))


_GGUF_NAMES = [(r"token_embd\.weight", "tok_embeddings.weight"), (r"output_norm\.weight", "norm.weight"),
               (r"output\.weight", "output.weight"),
               (r"blk\.(\d+)\.attn_norm\.weight", r"layers.\1.attention_norm.weight"),
               (r"blk\.(\d+)\.attn_q\.weight", r"layers.\1.attention.wq.weight"),
               (r"blk\.(\d+)\.attn_k\.weight", r"layers.\1.attention.wk.weight"),
               (r"blk\.(\d+)\.attn_v\.weight", r"layers.\1.attention.wv.weight"),
               (r"blk\.(\d+)\.attn_output\.weight", r"layers.\1.attention.wo.weight"),
               (r"blk\.(\d+)\.ffn_norm\.weight", r"layers.\1.ffn_norm.weight"),
               (r"blk\.(\d+)\.ffn_gate_inp\.weight", r"layers.\1.feed_forward.gate.weight"),
               (r"blk\.(\d+)\.ffn_gate\.weight", r"layers.\1.feed_forward.w1.weight"),
               (r"blk\.(\d+)\.ffn_down\.weight", r"layers.\1.feed_forward.w2.weight"),
               (r"blk\.(\d+)\.ffn_up\.weight", r"layers.\1.feed_forward.w3.weight"),
               (r"blk\.(\d+)\.ffn_gate\.(\d+)\.weight", r"layers.\1.feed_forward.experts.\2.w1.weight"),
               (r"blk\.(\d+)\.ffn_down\.(\d+)\.weight", r"layers.\1.feed_forward.experts.\2.w2.weight"),
               (r"blk\.(\d+)\.ffn_up\.(\d+)\.weight", r"layers.\1.feed_forward.experts.\2.w3.weight")]
_GGUF_MERGED = {"ffn_gate_exps": "w1", "ffn_down_exps": "w2", "ffn_up_exps": "w3"}

_HF_NAMES = [(r"model\.embed_tokens\.weight", "tok_embeddings.weight"), (r"model\.norm\.weight", "norm.weight"),
             (r"lm_head\.weight", "output.weight"),
             (r"model\.layers\.(\d+)\.input_layernorm\.weight", r"layers.\1.attention_norm.weight"),
             (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", r"layers.\1.ffn_norm.weight"),
             (r"model\.layers\.(\d+)\.self_attn\.q_proj\.weight", r"layers.\1.attention.wq.weight"),
             (r"model\.layers\.(\d+)\.self_attn\.k_proj\.weight", r"layers.\1.attention.wk.weight"),
             (r"model\.layers\.(\d+)\.self_attn\.v_proj\.weight", r"layers.\1.attention.wv.weight"),
             (r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", r"layers.\1.attention.wo.weight"),
             (r"model\.layers\.(\d+)\.block_sparse_moe\.gate\.weight", r"layers.\1.feed_forward.gate.weight"),
             (r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight",
              r"layers.\1.feed_forward.experts.\2.\3.weight"),
             (r"model\.layers\.(\d+)\.mlp\.gate_proj\.weight", r"layers.\1.feed_forward.w1.weight"),
             (r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", r"layers.\1.feed_forward.w2.weight"),
             (r"model\.layers\.(\d+)\.mlp\.up_proj\.weight", r"layers.\1.feed_forward.w3.weight")]


def _rename(tensors, table, where):
    out = {}
    for name, a in tensors.items():
        for pat, rep in table:
            if re.fullmatch(pat, name):
                out[re.sub(pat, rep, name)] = a
                break
        else:
            raise ValueError(f"{where}: unexpected tensor {name}")
    return out


def load_gguf(path):
    """The canonical weights (interleaved RoPE layout) from a GGUF file."""
    import smoe_formats as sf
    _, t = sf.read_gguf(path)
    w = {}
    for name, a in t.items():
        m = re.fullmatch(r"blk\.(\d+)\.(ffn_\w+_exps)\.weight", name)
        if m:
            for e in range(a.shape[0]):
                w[f"layers.{m[1]}.feed_forward.experts.{e}.{_GGUF_MERGED[m[2]]}.weight"] = a[e]
        else:
            w.update(_rename({name: a}, _GGUF_NAMES, path))
    return w


def load_hf(folder):
    """The weights of an HF folder under canonical names, q/k rows left as HF stores them (for
    rope_half). Reads every *.safetensors file, checking the index when there is one."""
    import smoe_formats as sf
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    t = {}
    for f in files:
        t.update(sf.read_safetensors(os.path.join(folder, f))[1])
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        if set(wm) != set(t):
            raise ValueError(f"{index}: weight_map does not list exactly the tensors of the shards")
    return _rename(t, _HF_NAMES, folder)


def load_mistral(folder):
    import smoe_formats as sf
    return dict(sf.read_safetensors(os.path.join(folder, "consolidated.safetensors"))[1])


def config_gguf(path):
    import smoe_formats as sf
    m = {k: v for k, (_, v) in sf.read_gguf(path)[0].items()}
    a = m["general.architecture"]
    return {"dim": m[a + ".embedding_length"], "n_layers": m[a + ".block_count"],
            "n_heads": m[a + ".attention.head_count"], "n_kv_heads": m[a + ".attention.head_count_kv"],
            "hidden": m[a + ".feed_forward_length"], "vocab": m[a + ".vocab_size"],
            "n_experts": m.get(a + ".expert_count", 0), "top_k": m.get(a + ".expert_used_count", 0),
            "rope_theta": m[a + ".rope.freq_base"], "window": m.get(a + ".attention.sliding_window", 0),
            "context": m[a + ".context_length"], "norm_eps": m[a + ".attention.layer_norm_rms_epsilon"]}


def config_hf(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    return {"dim": c["hidden_size"], "n_layers": c["num_hidden_layers"], "n_heads": c["num_attention_heads"],
            "n_kv_heads": c["num_key_value_heads"], "hidden": c["intermediate_size"], "vocab": c["vocab_size"],
            "n_experts": c.get("num_local_experts", 0), "top_k": c.get("num_experts_per_tok", 0),
            "rope_theta": c["rope_theta"], "window": c.get("sliding_window") or 0,
            "context": c["max_position_embeddings"], "norm_eps": c["rms_norm_eps"]}


def config_mistral(folder):
    with open(os.path.join(folder, "params.json")) as f:
        c = json.load(f)
    moe_ = c.get("moe") or {}
    return {"dim": c["dim"], "n_layers": c["n_layers"], "n_heads": c["n_heads"], "n_kv_heads": c["n_kv_heads"],
            "hidden": c["hidden_dim"], "vocab": c["vocab_size"], "n_experts": moe_.get("num_experts", 0),
            "top_k": moe_.get("num_experts_per_tok", 0), "rope_theta": c["rope_theta"],
            "window": c.get("sliding_window") or 0, "context": c.get("max_seq_len", 0), "norm_eps": c["norm_eps"]}


def load_copy(folder, which):
    """(h, weights, rope) for one of the generator's copies of a model, each read from its own
    files: hyper-parameters from its metadata, config.json or params.json."""
    if which == "gguf":
        p = os.path.join(folder, "model.gguf")
        return config_gguf(p), load_gguf(p), rope_interleaved
    if which == "hf":
        p = os.path.join(folder, "hf")
        return config_hf(p), load_hf(p), rope_half
    if which == "mistral":
        p = os.path.join(folder, "mistral")
        return config_mistral(p), load_mistral(p), rope_interleaved
    h, w = load(folder)
    return h, w, rope_interleaved


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--ids")
    ap.add_argument("--out")
    ap.add_argument("--from", dest="source", choices=["npz", "gguf", "hf", "mistral"], default="npz")
    ap.add_argument("--self-test", action="store_true", help="check the reference's own math and files")
    a = ap.parse_args()
    if a.self_test:
        import ref_selftest
        sys.exit(ref_selftest.main())
    if not a.folder or not a.ids:
        ap.error("FOLDER and --ids are required (or --self-test)")
    h, w, rope = load_copy(a.folder, a.source)
    logits = forward(h, w, [int(t) for t in a.ids.split()], rope=rope)
    if a.out:
        np.save(a.out, logits.astype(np.float32))
    else:
        np.set_printoptions(precision=4, suppress=True)
        print(logits)


if __name__ == "__main__":
    main()
