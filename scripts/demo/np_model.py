"""The demo model's forward pass in numpy alone (float32 or float16 weights, float64 arithmetic), read
from the exported files: an oracle for engine tests on machines without PyTorch. Same computation as
model.py (see its docstring); model.py and this file are checked against each other by
tests/golden/test_demo_model.py when torch is installed.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


class NumpyModel:
    def __init__(self, model_dir: str):
        with open(os.path.join(model_dir, "params.json")) as f:
            self.p = json.load(f)
        w, _ = safetensors_io.read(os.path.join(model_dir, "consolidated.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in w.items()}  # exact for float32 and float16
        p = self.p
        if p["n_heads"] % p["n_kv_heads"] != 0 or p["head_dim"] % 2 != 0:
            raise ValueError(f"{model_dir}/params.json: unsupported heads {p}")

    def _rms(self, x, name):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.p["norm_eps"]) * self.w[name]

    def _rope(self, x):
        """x: (T, H, hd); interleaved pairs (2i, 2i+1), angle pos * theta^(-2i/hd)."""
        T, _, hd = x.shape
        inv = self.p["rope_theta"] ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * c - x1 * s
        out[..., 1::2] = x0 * s + x1 * c
        return out

    def _attention(self, x, L):
        p, w = self.p, self.w
        T, hd, H, KV = x.shape[0], p["head_dim"], p["n_heads"], p["n_kv_heads"]
        q = self._rope((x @ w[f"{L}.attention.wq.weight"].T).reshape(T, H, hd))
        k = self._rope((x @ w[f"{L}.attention.wk.weight"].T).reshape(T, KV, hd))
        v = (x @ w[f"{L}.attention.wv.weight"].T).reshape(T, KV, hd)
        out = np.empty((T, H, hd))
        mask = np.triu(np.ones((T, T), dtype=bool), 1)
        for h in range(H):
            kv = h // (H // KV)
            s = q[:, h] @ k[:, kv].T / np.sqrt(hd)
            s[mask] = -np.inf
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, h] = (s / s.sum(-1, keepdims=True)) @ v[:, kv]
        return out.reshape(T, H * hd) @ w[f"{L}.attention.wo.weight"].T

    def _moe(self, x, L):
        p, w = self.p, self.w
        logits = x @ w[f"{L}.feed_forward.gate.weight"].T  # (T, n_experts)
        k = p["moe"]["num_experts_per_tok"]
        top = np.argsort(-logits, axis=-1, kind="stable")[:, :k]  # ties: the lower expert index
        sel = np.take_along_axis(logits, top, -1)
        sel = np.exp(sel - sel.max(-1, keepdims=True))
        sel /= sel.sum(-1, keepdims=True)  # softmax over the selected logits only
        y = np.zeros_like(x)
        for e in range(p["moe"]["num_experts"]):
            tok, slot = np.nonzero(top == e)
            if tok.size == 0:
                continue
            pre = f"{L}.feed_forward.experts.{e}."
            g = x[tok] @ w[pre + "w1.weight"].T
            u = x[tok] @ w[pre + "w3.weight"].T
            y[tok] += sel[tok, slot, None] * ((g / (1 + np.exp(-g)) * u) @ w[pre + "w2.weight"].T)
        return y

    def logits(self, ids) -> np.ndarray:
        """ids: sequence of token ids at positions 0..T-1. Returns float64 (T, vocab)."""
        w = self.w
        h = w["tok_embeddings.weight"][np.asarray(ids)].astype(np.float64)
        for i in range(self.p["n_layers"]):
            L = f"layers.{i}"
            h = h + self._attention(self._rms(h, f"{L}.attention_norm.weight"), L)
            h = h + self._moe(self._rms(h, f"{L}.ffn_norm.weight"), L)
        return self._rms(h, "norm.weight") @ w["output.weight"].T.astype(np.float64)

    def greedy(self, ids: list[int], stops: set[int], max_new: int) -> list[int]:
        """Greedy continuation of ids (see infer.py): stops on any id in stops, not included."""
        ids, gen = list(ids), []
        for _ in range(max_new):
            nxt = int(np.argmax(self.logits(ids)[-1]))
            if nxt in stops:
                break
            gen.append(nxt)
            ids.append(nxt)
        return gen
