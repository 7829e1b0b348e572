"""A Mixtral-architecture sparse MoE transformer in PyTorch, small enough to train on a CPU.

Exactly the computation of Mistral's reference Mixtral (consolidated checkpoint layout), so that an
engine loading the exported files must reproduce its logits:

  h = tok_embeddings[ids]
  for each layer:
      h = h + Attention(RMSNorm(h; attention_norm))
      h = h + MoE(RMSNorm(h; ffn_norm))
  logits = output(RMSNorm(h; norm))

  RMSNorm(x; w) = x / sqrt(mean(x^2) + norm_eps) * w
  Attention: q = wq x, k = wk x, v = wv x split into heads of head_dim; rotary embedding on q and k
      with interleaved pairs (2i, 2i+1) rotated by angle pos * rope_theta^(-2i/head_dim)
      (i = 0 .. head_dim/2-1); grouped-query: query head h reads kv head h // (n_heads/n_kv_heads);
      causal softmax(q k^T / sqrt(head_dim)) v, no sliding window; out = wo(concat heads).
  MoE: logits = gate x (n_experts); take the top num_experts_per_tok (2) logits; weights =
      softmax over those selected logits only; y = sum_i w_i * w2(silu(w1 x) * w3 x) of expert i.

All Linear weights are stored (out, in), y = W x, no biases.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Params:
    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    norm_eps: float
    vocab_size: int
    rope_theta: float
    num_experts: int
    num_experts_per_tok: int

    def to_json(self) -> dict:
        """params.json in Mistral's layout."""
        return {
            "dim": self.dim,
            "n_layers": self.n_layers,
            "head_dim": self.head_dim,
            "hidden_dim": self.hidden_dim,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "norm_eps": self.norm_eps,
            "vocab_size": self.vocab_size,
            "rope_theta": self.rope_theta,
            "moe": {
                "num_experts": self.num_experts,
                "num_experts_per_tok": self.num_experts_per_tok,
            },
        }

    @staticmethod
    def from_json(j: dict) -> "Params":
        moe = j["moe"]
        return Params(
            dim=j["dim"], n_layers=j["n_layers"], head_dim=j["head_dim"],
            hidden_dim=j["hidden_dim"], n_heads=j["n_heads"], n_kv_heads=j["n_kv_heads"],
            norm_eps=j["norm_eps"], vocab_size=j["vocab_size"], rope_theta=j["rope_theta"],
            num_experts=moe["num_experts"], num_experts_per_tok=moe["num_experts_per_tok"])


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (dim,)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, theta: float, n_pos: int):
    """cos, sin of shape (n_pos, head_dim/2): angle[p, i] = p * theta^(-2i/head_dim)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    """x: (B, T, H, head_dim); rotates the interleaved pairs (x[2i], x[2i+1])."""
    xr = x.reshape(*x.shape[:-1], -1, 2)
    x0, x1 = xr[..., 0], xr[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.p = p
        self.wq = nn.Linear(p.dim, p.n_heads * p.head_dim, bias=False)  # (n_heads*hd, dim)
        self.wk = nn.Linear(p.dim, p.n_kv_heads * p.head_dim, bias=False)  # (n_kv*hd, dim)
        self.wv = nn.Linear(p.dim, p.n_kv_heads * p.head_dim, bias=False)  # (n_kv*hd, dim)
        self.wo = nn.Linear(p.n_heads * p.head_dim, p.dim, bias=False)  # (dim, n_heads*hd)

    def forward(self, x, cos, sin):
        p = self.p
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, p.n_heads, p.head_dim), cos, sin)
        k = apply_rope(self.wk(x).view(B, T, p.n_kv_heads, p.head_dim), cos, sin)
        v = self.wv(x).view(B, T, p.n_kv_heads, p.head_dim)
        rep = p.n_heads // p.n_kv_heads
        k = k.repeat_interleave(rep, dim=2)  # query head h uses kv head h // rep
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(p.head_dim)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        out = (att @ v).transpose(1, 2).reshape(B, T, p.n_heads * p.head_dim)
        return self.wo(out)


class Expert(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.w1 = nn.Linear(p.dim, p.hidden_dim, bias=False)  # gate (hidden, dim)
        self.w2 = nn.Linear(p.hidden_dim, p.dim, bias=False)  # down (dim, hidden)
        self.w3 = nn.Linear(p.dim, p.hidden_dim, bias=False)  # up   (hidden, dim)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.p = p
        self.gate = nn.Linear(p.dim, p.num_experts, bias=False)  # (n_experts, dim)
        self.experts = nn.ModuleList(Expert(p) for _ in range(p.num_experts))

    def forward(self, x):
        """x: (B, T, dim). Returns (y, aux) where aux is the load-balancing loss term."""
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = self.gate(x)  # (N, n_experts)
        top_vals, top_idx = torch.topk(logits, self.p.num_experts_per_tok, dim=-1)
        weights = top_vals.softmax(-1)  # softmax over the selected logits only
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.nonzero(top_idx == e, as_tuple=True)
            if tok.numel() == 0:
                continue
            out = expert(x[tok]) * weights[tok, slot, None]
            y = y.index_add(0, tok, out)
        # Switch-style balance term: n_experts * sum_e (fraction routed to e) * (mean prob of e).
        probs = logits.softmax(-1)
        frac = F.one_hot(top_idx, self.p.num_experts).float().sum(1).mean(0)
        frac = frac / self.p.num_experts_per_tok
        aux = self.p.num_experts * (frac * probs.mean(0)).sum()
        return y.reshape(shape), aux


class Block(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.attention_norm = RMSNorm(p.dim, p.norm_eps)
        self.attention = Attention(p)
        self.ffn_norm = RMSNorm(p.dim, p.norm_eps)
        self.feed_forward = MoE(p)

    def forward(self, h, cos, sin):
        h = h + self.attention(self.attention_norm(h), cos, sin)
        y, aux = self.feed_forward(self.ffn_norm(h))
        return h + y, aux


class Transformer(nn.Module):
    """Parameter names match Mistral's consolidated checkpoint (see export.py)."""

    def __init__(self, p: Params, max_pos: int = 256):
        super().__init__()
        self.p = p
        self.tok_embeddings = nn.Embedding(p.vocab_size, p.dim)  # (vocab, dim)
        self.layers = nn.ModuleList(Block(p) for _ in range(p.n_layers))
        self.norm = RMSNorm(p.dim, p.norm_eps)
        self.output = nn.Linear(p.dim, p.vocab_size, bias=False)  # (vocab, dim)
        cos, sin = rope_tables(p.head_dim, p.rope_theta, max_pos)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, ids):
        """ids: (B, T) int64, positions 0..T-1. Returns (logits (B, T, vocab), aux loss)."""
        T = ids.shape[1]
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        h = self.tok_embeddings(ids)
        aux = h.new_zeros(())
        for layer in self.layers:
            h, a = layer(h, cos, sin)
            aux = aux + a
        return self.output(self.norm(h)), aux / len(self.layers)

    def consolidated_state(self) -> dict:
        """name -> float32 tensor, Mistral consolidated names (same as this module's)."""
        return {k: v.detach().float().contiguous() for k, v in self.state_dict().items()}
