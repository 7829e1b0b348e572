#!/usr/bin/env python3
"""An independent float64 numpy reference of the Mixtral / Mistral forward pass, written from the
paper's math (not from smoe's C++): logits at every position of a token sequence.

  ref_forward.py DIR --ids "1 5 9" [--out logits.npy]     (DIR from make_tiny_model.py)
"""
import argparse
import json
import os

import numpy as np


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_interleaved(x, pos, theta):
    """x: (heads, hd). Rotates pairs (2i, 2i+1) by pos·θ^(-2i/hd)."""
    hd = x.shape[-1]
    freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    c, s = np.cos(pos * freq), np.sin(pos * freq)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def rope_half(x, pos, theta):
    """Rotate-half RoPE (HF's convention): pairs (i, i + hd/2)."""
    hd = x.shape[-1]
    freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    c, s = np.cos(pos * freq), np.sin(pos * freq)
    a, b = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(h, w, ids, rope=rope_interleaved, names=None):
    """h: hyper-parameters (ref.json), w: canonical weights (float arrays), ids: token ids.
    Returns logits (len(ids), vocab) in float64."""
    g = lambda k: np.asarray(w[k], dtype=np.float64)  # noqa: E731
    d, nh, nkv = h["dim"], h["n_heads"], h["n_kv_heads"]
    hd, eps, theta, W = d // nh, 1e-5, h["rope_theta"], h.get("window") or 0
    n = len(ids)
    x = g("tok_embeddings.weight")[ids]  # (n, d)
    for l in range(h["n_layers"]):
        p = f"layers.{l}."
        xn = rmsnorm(x, g(p + "attention_norm.weight"), eps)
        q = (xn @ g(p + "attention.wq.weight").T).reshape(n, nh, hd)
        k = (xn @ g(p + "attention.wk.weight").T).reshape(n, nkv, hd)
        v = (xn @ g(p + "attention.wv.weight").T).reshape(n, nkv, hd)
        q = np.stack([rope(q[i], i, theta) for i in range(n)])
        k = np.stack([rope(k[i], i, theta) for i in range(n)])
        att = np.zeros((n, nh, hd))
        for i in range(n):
            lo = max(0, i - W + 1) if W else 0
            for head in range(nh):
                kv = head // (nh // nkv)
                s = k[lo: i + 1, kv] @ q[i, head] / np.sqrt(hd)
                s = np.exp(s - s.max())
                s /= s.sum()
                att[i, head] = s @ v[lo: i + 1, kv]
        x = x + att.reshape(n, nh * hd) @ g(p + "attention.wo.weight").T
        xn = rmsnorm(x, g(p + "ffn_norm.weight"), eps)
        if h["n_experts"]:
            logits = xn @ g(p + "feed_forward.gate.weight").T  # (n, E)
            y = np.zeros_like(xn)
            for i in range(n):
                top = np.argsort(-logits[i], kind="stable")[: h["top_k"]]
                wts = np.exp(logits[i, top] - logits[i, top].max())
                wts /= wts.sum()
                for e, wt in zip(top, wts):
                    q_ = p + f"feed_forward.experts.{e}."
                    hmid = silu(g(q_ + "w1.weight") @ xn[i]) * (g(q_ + "w3.weight") @ xn[i])
                    y[i] += wt * (g(q_ + "w2.weight") @ hmid)
        else:
            hmid = silu(xn @ g(p + "feed_forward.w1.weight").T) * (xn @ g(p + "feed_forward.w3.weight").T)
            y = hmid @ g(p + "feed_forward.w2.weight").T
        x = x + y
    return rmsnorm(x, g("norm.weight"), eps) @ g("output.weight").T


def load(folder):
    with open(os.path.join(folder, "ref.json")) as f:
        h = json.load(f)
    return h, dict(np.load(os.path.join(folder, "weights.npz")))


def hf_weights(h, w):
    """The canonical weights with q/k rows as HF stores them (for the rotate-half variant)."""
    from make_tiny_model import hf_permute
    out = dict(w)
    for l in range(h["n_layers"]):
        p = f"layers.{l}."
        out[p + "attention.wq.weight"] = hf_permute(w[p + "attention.wq.weight"], h["n_heads"])
        out[p + "attention.wk.weight"] = hf_permute(w[p + "attention.wk.weight"], h["n_kv_heads"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--out")
    a = ap.parse_args()
    h, w = load(a.folder)
    logits = forward(h, w, [int(t) for t in a.ids.split()])
    if a.out:
        np.save(a.out, logits.astype(np.float32))
    else:
        print(logits)


if __name__ == "__main__":
    main()
