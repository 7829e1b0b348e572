#!/usr/bin/env python3
"""Writes tiny random Mixtral- or Mistral-style models, the same weights in every format smoe
reads: a GGUF file (llama.cpp layout), a Hugging Face folder and a Mistral folder, plus the
canonical weights (weights.npz) and hyper-parameters (ref.json) for the numpy reference.

  make_tiny_model.py --kind mixtral --out DIR [--seed N] [--dtype f32|f16|bf16] [--legacy-experts]
                     [--shards N] [--tokenizer-gguf FILE]
  make_tiny_model.py --kind mixtral --real-shape --layers 2 --out DIR|FILE.gguf [--dtype TYPE]
                     (benchmark file, GGUF only, DIR/model.gguf or FILE.gguf; TYPE also q8_0, q4_0,
                     q2_k, q3_k, q4_k, q5_k, q6_k or a k-quant mix q3_k_m, q4_k_m, ... as
                     `smoe quantize --type` reads them, in either case)

Canonical weights use interleaved-pair RoPE (GGUF and Mistral's own layout); the HF copy stores q
and k permuted for rotate-half RoPE as the HF conversion does.
"""
import argparse
import json
import os

import numpy as np

import smoe_formats as sf

PRESETS = {
    "mixtral": dict(dim=64, n_layers=4, n_heads=4, n_kv_heads=2, hidden=96, vocab=128, n_experts=8,
                    top_k=2, rope_theta=1e6, window=0, context=256, norm_eps=1e-5),
    "mistral": dict(dim=64, n_layers=3, n_heads=4, n_kv_heads=2, hidden=128, vocab=128, n_experts=0,
                    top_k=0, rope_theta=1e4, window=16, context=256, norm_eps=1e-5),
}
REAL = {
    "mixtral": dict(dim=4096, n_heads=32, n_kv_heads=8, hidden=14336, vocab=32000, n_experts=8, top_k=2,
                    rope_theta=1e6, window=0, context=32768, norm_eps=1e-5),
    "mistral": dict(dim=4096, n_heads=32, n_kv_heads=8, hidden=14336, vocab=32000, n_experts=0, top_k=0,
                    rope_theta=1e4, window=4096, context=32768, norm_eps=1e-5),
}


def hf_permute(w, n_heads):
    """Interleaved-pair rows → rotate-half rows (what HF checkpoints store for q and k)."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.reshape(n_heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def check(h):
    """Rejects hyper-parameters no model of this family can have."""
    problems = []
    if h["dim"] % h["n_heads"] or (h["dim"] // h["n_heads"]) % 2:
        problems.append(f"dim {h['dim']} must split into {h['n_heads']} heads of even size")
    if h["n_heads"] % h["n_kv_heads"]:
        problems.append(f"{h['n_heads']} heads are not a multiple of {h['n_kv_heads']} KV heads")
    if h["n_experts"] and not 0 < h["top_k"] <= h["n_experts"]:
        problems.append(f"top-k {h['top_k']} with {h['n_experts']} experts")
    if not h["n_experts"]:
        h["top_k"] = 0
    if problems:
        raise SystemExit("make_tiny_model.py: " + "; ".join(problems))


def make_weights(h, seed):
    """Canonical weights: dict of numpy float32 arrays with Mistral-layout names."""
    rng = np.random.default_rng(seed)
    d, hd = h["dim"], h["dim"] // h["n_heads"]
    qd, kvd, hid = h["n_heads"] * hd, h["n_kv_heads"] * hd, h["hidden"]
    r = lambda *s, scale: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    # Norm weights sit on the bfloat16 grid, so every format (F32 GGUF norms, F16 or BF16
    # safetensors) holds exactly the same values.
    norm = lambda: sf.round_trip(rng.uniform(0.8, 1.2, d), "bf16")  # noqa: E731
    w = {"tok_embeddings.weight": r(h["vocab"], d, scale=1.0), "norm.weight": norm(),
         "output.weight": r(h["vocab"], d, scale=d ** -0.5)}
    for l in range(h["n_layers"]):
        p = f"layers.{l}."
        w[p + "attention_norm.weight"] = norm()
        w[p + "attention.wq.weight"] = r(qd, d, scale=d ** -0.5)
        w[p + "attention.wk.weight"] = r(kvd, d, scale=d ** -0.5)
        w[p + "attention.wv.weight"] = r(kvd, d, scale=d ** -0.5)
        w[p + "attention.wo.weight"] = r(d, qd, scale=qd ** -0.5)
        w[p + "ffn_norm.weight"] = norm()
        if h["n_experts"]:
            w[p + "feed_forward.gate.weight"] = r(h["n_experts"], d, scale=2.0 * d ** -0.5)
            for e in range(h["n_experts"]):
                q = p + f"feed_forward.experts.{e}."
                w[q + "w1.weight"] = r(hid, d, scale=d ** -0.5)
                w[q + "w2.weight"] = r(d, hid, scale=hid ** -0.5)
                w[q + "w3.weight"] = r(hid, d, scale=d ** -0.5)
        else:
            w[p + "feed_forward.w1.weight"] = r(hid, d, scale=d ** -0.5)
            w[p + "feed_forward.w2.weight"] = r(d, hid, scale=hid ** -0.5)
            w[p + "feed_forward.w3.weight"] = r(hid, d, scale=d ** -0.5)
    return w


def gguf_metadata(g, h, name):
    hd = h["dim"] // h["n_heads"]
    g.string("general.architecture", "llama")
    g.string("general.name", name)
    g.u32("llama.context_length", h["context"])
    g.u32("llama.embedding_length", h["dim"])
    g.u32("llama.block_count", h["n_layers"])
    g.u32("llama.feed_forward_length", h["hidden"])
    g.u32("llama.rope.dimension_count", hd)
    g.u32("llama.attention.head_count", h["n_heads"])
    g.u32("llama.attention.head_count_kv", h["n_kv_heads"])
    g.f32("llama.attention.layer_norm_rms_epsilon", h["norm_eps"])
    g.f32("llama.rope.freq_base", h["rope_theta"])
    g.u32("llama.vocab_size", h["vocab"])
    if h["n_experts"]:
        g.u32("llama.expert_count", h["n_experts"])
        g.u32("llama.expert_used_count", h["top_k"])
    if h["window"]:
        g.u32("llama.attention.sliding_window", h["window"])


def write_gguf(path, h, w, dtype, legacy=False):
    g = sf.GGUFWriter()
    gguf_metadata(g, h, "tiny-" + ("mixtral" if h["n_experts"] else "mistral"))
    g.tensor("token_embd.weight", w["tok_embeddings.weight"], dtype)
    for l in range(h["n_layers"]):
        p, b = f"layers.{l}.", f"blk.{l}."
        g.tensor(b + "attn_norm.weight", w[p + "attention_norm.weight"])
        for src, dst in (("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output")):
            g.tensor(b + dst + ".weight", w[p + f"attention.{src}.weight"], dtype)
        g.tensor(b + "ffn_norm.weight", w[p + "ffn_norm.weight"])
        names = (("w1", "ffn_gate"), ("w3", "ffn_up"), ("w2", "ffn_down"))
        if not h["n_experts"]:
            for src, dst in names:
                g.tensor(b + dst + ".weight", w[p + f"feed_forward.{src}.weight"], dtype)
            continue
        g.tensor(b + "ffn_gate_inp.weight", w[p + "feed_forward.gate.weight"], dtype)
        for src, dst in names:
            experts = [w[p + f"feed_forward.experts.{e}.{src}.weight"] for e in range(h["n_experts"])]
            if legacy:
                for e, x in enumerate(experts):
                    g.tensor(b + f"{dst}.{e}.weight", x, dtype)
            else:
                g.tensor(b + dst + "_exps.weight", np.stack(experts), dtype)
    g.tensor("output_norm.weight", w["norm.weight"])
    g.tensor("output.weight", w["output.weight"], dtype)
    g.write(path)


def hf_names(h, w):
    out = {"model.embed_tokens.weight": w["tok_embeddings.weight"], "model.norm.weight": w["norm.weight"],
           "lm_head.weight": w["output.weight"]}
    for l in range(h["n_layers"]):
        p, q = f"layers.{l}.", f"model.layers.{l}."
        out[q + "input_layernorm.weight"] = w[p + "attention_norm.weight"]
        out[q + "post_attention_layernorm.weight"] = w[p + "ffn_norm.weight"]
        out[q + "self_attn.q_proj.weight"] = hf_permute(w[p + "attention.wq.weight"], h["n_heads"])
        out[q + "self_attn.k_proj.weight"] = hf_permute(w[p + "attention.wk.weight"], h["n_kv_heads"])
        out[q + "self_attn.v_proj.weight"] = w[p + "attention.wv.weight"]
        out[q + "self_attn.o_proj.weight"] = w[p + "attention.wo.weight"]
        if h["n_experts"]:
            out[q + "block_sparse_moe.gate.weight"] = w[p + "feed_forward.gate.weight"]
            for e in range(h["n_experts"]):
                for k in ("w1", "w2", "w3"):
                    out[q + f"block_sparse_moe.experts.{e}.{k}.weight"] = w[p + f"feed_forward.experts.{e}.{k}.weight"]
        else:
            for k, n in (("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj")):
                out[q + f"mlp.{n}.weight"] = w[p + f"feed_forward.{k}.weight"]
    return out


def write_hf(folder, h, w, dtype, shards):
    os.makedirs(folder, exist_ok=True)
    cfg = {"architectures": ["MixtralForCausalLM" if h["n_experts"] else "MistralForCausalLM"],
           "hidden_size": h["dim"], "intermediate_size": h["hidden"], "num_hidden_layers": h["n_layers"],
           "num_attention_heads": h["n_heads"], "num_key_value_heads": h["n_kv_heads"], "rms_norm_eps": h["norm_eps"],
           "rope_theta": h["rope_theta"], "vocab_size": h["vocab"], "max_position_embeddings": h["context"],
           "sliding_window": h["window"] or None, "tie_word_embeddings": False,
           "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype]}
    if h["n_experts"]:
        cfg.update(num_local_experts=h["n_experts"], num_experts_per_tok=h["top_k"])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tensors = hf_names(h, w)
    if shards <= 1:
        sf.write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype)
        return
    names = list(tensors)
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        sf.write_safetensors(os.path.join(folder, fname), part, dtype)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)


def write_mistral(folder, h, w, dtype):
    os.makedirs(folder, exist_ok=True)
    params = {"dim": h["dim"], "n_layers": h["n_layers"], "head_dim": h["dim"] // h["n_heads"],
              "hidden_dim": h["hidden"], "n_heads": h["n_heads"], "n_kv_heads": h["n_kv_heads"],
              "norm_eps": h["norm_eps"], "vocab_size": h["vocab"], "rope_theta": h["rope_theta"],
              "max_seq_len": h["context"]}
    if h["window"]:
        params["sliding_window"] = h["window"]
    if h["n_experts"]:
        params["moe"] = {"num_experts": h["n_experts"], "num_experts_per_tok": h["top_k"]}
    with open(os.path.join(folder, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
    sf.write_safetensors(os.path.join(folder, "consolidated.safetensors"), w, dtype)


def add_tokenizer(g, model_path):
    """Embeds a SentencePiece tokenizer.model as tokenizer.ggml.* metadata (other engines need it)."""
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
    n = sp.get_piece_size()
    g.string("tokenizer.ggml.model", "llama")
    g.strings("tokenizer.ggml.tokens", [sp.id_to_piece(i) for i in range(n)])
    g.floats("tokenizer.ggml.scores", [sp.get_score(i) for i in range(n)])
    g.ints("tokenizer.ggml.token_type", [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else
                                         6 if sp.is_byte(i) else 5 if sp.is_unused(i) else 1 for i in range(n)])
    g.u32("tokenizer.ggml.bos_token_id", sp.bos_id())
    g.u32("tokenizer.ggml.eos_token_id", sp.eos_id())
    g.u32("tokenizer.ggml.unknown_token_id", sp.unk_id())


FLOAT_TYPES = ("f32", "f16", "bf16")


def parse_type(name):
    """A weight type as `smoe quantize --type` reads it (any case): a plain type, or a k-quant with
    _S (the same, unmixed) or _M (the mix). Returns (base type, mix)."""
    t = name.lower()
    mix = False
    if t.endswith(("_m", "_s")) and "_k" in t[:-2]:
        mix, t = t.endswith("_m"), t[:-2]
    if t not in FLOAT_TYPES and t not in sf.QUANT:
        raise SystemExit(f"make_tiny_model.py: unknown type {name!r} (f32, f16, bf16, "
                         + ", ".join(sf.QUANT) + ", or a k-quant with _S or _M)")
    return t, mix


def tensor_type(base, mix, kind, layer, n_layers):
    """The type smoe's converter (src/engine/convert.cpp, TypePolicy) gives a weight: the router in
    F32; with the _M mix, Q6_K for the output head and for attention values and FFN down in the
    layers that get more bits (the first and last eighth, and every third one between)."""
    if kind == "router":
        return "f32"
    if mix:
        more = layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2
        if (kind in ("attn_v", "ffn_down") and more) or kind == "output":
            return "q6_k"
    return base


def write_real_shape(path, h, dtype, seed, tokenizer=None, slice_values=16 << 20):
    """A real-shape benchmark file (random weights, never committed). Streams: each tensor is made
    when it is written, slice by slice, so memory stays small (0.3-0.7 GB) whatever the file's size.
    The slices are windows at random offsets into one pool of normal values (std 0.02): drawing and
    converting billions of fresh values would take minutes and a benchmark gains nothing from it.

    `dtype` may be a quantized type or mix (parse_type): the pool is then quantized once per block
    type, shifted so that it dequantizes to mean 0 (weights with a common offset send every token
    of a layer to the same expert), and the windows start at whole blocks."""
    rng = np.random.default_rng(seed)
    d, hd = h["dim"], h["dim"] // h["n_heads"]
    base, mix = parse_type(dtype)
    g = sf.GGUFWriter()
    gguf_metadata(g, h, "real-shape-" + ("mixtral" if h["n_experts"] else "mistral"))
    if tokenizer:
        add_tokenizer(g, tokenizer)
    pools = {}

    def pool(dt):
        if dt not in pools:
            values = rng.standard_normal(2 * slice_values, dtype=np.float32) * np.float32(0.02)
            if dt in sf.QUANT:
                values -= values.mean()
                q = sf.quantize(values, dt)
                q = sf.quantize(values - sf.dequantize(q, dt).mean(), dt)
                pools[dt] = q.tobytes()
            else:
                pools[dt] = sf.encode(values, dt)
        return pools[dt]

    def rand(name, *shape, kind="", layer=0):
        dt = tensor_type(base, mix, kind, layer, h["n_layers"])
        rows = max(1, slice_values // shape[-1])
        flat = int(np.prod(shape[:-1]))
        _, bs, bb = sf.block_info(dt)

        def chunks():
            p = pool(dt)
            for r0 in range(0, flat, rows):
                n = min(rows, flat - r0) * shape[-1]
                off = int(rng.integers(0, slice_values // bs)) * bb
                yield p[off: off + sf.type_bytes(dt, n)]
        g.tensor_lazy(name, shape, dt, chunks)

    def ones(name):
        g.tensor_lazy(name, (d,), "f32", lambda: iter([np.ones(d, np.float32)]))

    rand("token_embd.weight", h["vocab"], d)
    for l in range(h["n_layers"]):
        b = f"blk.{l}."
        ones(b + "attn_norm.weight")
        rand(b + "attn_q.weight", h["n_heads"] * hd, d)
        rand(b + "attn_k.weight", h["n_kv_heads"] * hd, d)
        rand(b + "attn_v.weight", h["n_kv_heads"] * hd, d, kind="attn_v", layer=l)
        rand(b + "attn_output.weight", d, h["n_heads"] * hd)
        ones(b + "ffn_norm.weight")
        if h["n_experts"]:
            rand(b + "ffn_gate_inp.weight", h["n_experts"], d, kind="router")
            rand(b + "ffn_gate_exps.weight", h["n_experts"], h["hidden"], d)
            rand(b + "ffn_up_exps.weight", h["n_experts"], h["hidden"], d)
            rand(b + "ffn_down_exps.weight", h["n_experts"], d, h["hidden"], kind="ffn_down", layer=l)
        else:
            rand(b + "ffn_gate.weight", h["hidden"], d)
            rand(b + "ffn_up.weight", h["hidden"], d)
            rand(b + "ffn_down.weight", d, h["hidden"], kind="ffn_down", layer=l)
    ones("output_norm.weight")
    rand("output.weight", h["vocab"], d, kind="output")
    g.write(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["mixtral", "mistral"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", "--type", type=str.lower, default="f32",
                    help="f32, f16 or bf16; with --real-shape also a quantized type or mix "
                         "(q8_0, q4_0, q2_k, q3_k, q4_k, q5_k, q6_k, q3_k_m, q4_k_m, q5_k_m, ...)")
    ap.add_argument("--legacy-experts", action="store_true", help="per-expert GGUF tensors")
    ap.add_argument("--shards", type=int, default=1, help="HF safetensors shards")
    ap.add_argument("--real-shape", action="store_true", help="Mixtral 8x7B / Mistral 7B layer shapes")
    ap.add_argument("--layers", type=int, help="override the layer count")
    ap.add_argument("--tokenizer-model", help="embed this SentencePiece tokenizer.model (real-shape files)")
    for k in ("dim", "hidden", "vocab", "window", "context", "n_heads", "n_kv_heads", "experts", "top_k"):
        ap.add_argument("--" + k.replace("_", "-"), type=int)
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--norm-eps", type=float)
    a = ap.parse_args()
    if a.dtype not in FLOAT_TYPES and not a.real_shape:
        ap.error(f"--dtype {a.dtype}: quantized types are for --real-shape files (f32, f16, bf16 here)")
    h = dict(PRESETS[a.kind])
    if a.real_shape:
        h.update(REAL[a.kind], n_layers=a.layers or 2)
        path = a.out if a.out.endswith(".gguf") else os.path.join(a.out, "model.gguf")
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_real_shape(path, h, a.dtype, a.seed, a.tokenizer_model)
        return
    os.makedirs(a.out, exist_ok=True)
    if a.layers:
        h["n_layers"] = a.layers
    for k in ("dim", "hidden", "vocab", "window", "context", "n_heads", "n_kv_heads", "top_k",
              "rope_theta", "norm_eps"):
        if getattr(a, k) is not None:
            h[k] = getattr(a, k)
    if a.experts is not None:
        h["n_experts"] = a.experts
    check(h)
    w = make_weights(h, a.seed)
    # The reference sees exactly the values the files hold.
    stored = {k: sf.round_trip(v, a.dtype) for k, v in w.items()}
    np.savez(os.path.join(a.out, "weights.npz"), **stored)
    with open(os.path.join(a.out, "ref.json"), "w") as f:
        json.dump(h, f, indent=2)
    write_gguf(os.path.join(a.out, "model.gguf"), h, w, a.dtype, a.legacy_experts)
    write_hf(os.path.join(a.out, "hf"), h, w, a.dtype, a.shards)
    write_mistral(os.path.join(a.out, "mistral"), h, w, a.dtype)


if __name__ == "__main__":
    main()
