// Writes a bound model back out as GGUF. Works from the typed weights (not the raw file), so
// every source's conventions (HF's q/k order, per-expert tensors) are already normalised.
#include "smoe/convert.h"

#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "engine/model_impl.h"
#include "io/gguf_writer.h"
#include "tokenizer/gguf_vocab.h"

namespace smoe {
namespace {

struct Exporter {
  GgufWriter& w;
  DType target;  // F32 for "keep as f32"
  bool keep;     // keep each tensor's dtype
  std::function<void(int64_t, int64_t, uint64_t)> progress;
  int64_t total = 0;
  int64_t n_tensors = 0;
  uint64_t bytes = 0;

  // Matrices stacked along a new outer dimension (one for a plain matrix).
  void add(const std::string& name, const std::vector<const Matrix*>& ms, bool force_f32 = false) {
    const Matrix& m0 = *ms[0];
    const DType out = force_f32 ? DType::F32 : keep ? m0.dtype : target;
    std::vector<float> row(static_cast<size_t>(m0.cols));
    const size_t out_row = *dtype_bytes(out, m0.cols);
    std::vector<uint8_t> buf(out_row * m0.rows * ms.size());
    uint8_t* dst = buf.data();
    for (const Matrix* m : ms)
      for (int64_t r = 0; r < m->rows; ++r, dst += out_row) {
        if (out == m->dtype) {
          std::memcpy(dst, m->row(r), out_row);
          continue;
        }
        row_to_f32(m->dtype, m->row(r), row.data(), m->cols);
        from_f32(out, row.data(), dst, m->cols);
      }
    std::vector<int64_t> shape{m0.rows, m0.cols};
    if (ms.size() > 1) shape.insert(shape.begin(), static_cast<int64_t>(ms.size()));
    w.add_tensor(name, out, shape, buf.data(), buf.size());
    done(buf.size());
  }

  void add_vector(const std::string& name, const float* v, int64_t n) {
    w.add_tensor(name, DType::F32, {n}, v, static_cast<size_t>(n) * 4);
    done(static_cast<uint64_t>(n) * 4);
  }

  void done(uint64_t b) {
    ++n_tensors;
    bytes += b;
    if (progress) progress(n_tensors, total, bytes);
  }

  static void from_f32(DType t, const float* src, uint8_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = 0;
      switch (t) {
        case DType::F32:
          std::memcpy(dst + 4 * i, src + i, 4);
          continue;
        case DType::F16:
          h = f32_to_f16(src[i]);
          break;
        case DType::BF16:
          h = f32_to_bf16(src[i]);
          break;
        default:
          fail("convert: cannot write {} tensors", dtype_name(t));
      }
      std::memcpy(dst + 2 * i, &h, 2);
    }
  }
};

void write_config(GgufWriter& w, const ModelConfig& c, const std::string& name) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", name);
  w.set_u32("llama.context_length", static_cast<uint32_t>(c.max_context));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.set_f32("llama.rope.freq_base", c.rope_theta);
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  if (c.is_moe()) {
    w.set_u32("llama.expert_count", static_cast<uint32_t>(c.n_experts));
    w.set_u32("llama.expert_used_count", static_cast<uint32_t>(c.n_experts_used));
  }
  if (c.sliding_window > 0)
    w.set_u32("llama.attention.sliding_window", static_cast<uint32_t>(c.sliding_window));
}

void write_layers(Exporter& ex, const ModelConfig& c, const ModelWeights& mw) {
  for (size_t l = 0; l < mw.layers.size(); ++l) {
    const LayerWeights& lw = mw.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    ex.add_vector(p + "attn_norm.weight", lw.attn_norm, c.dim);
    ex.add(p + "attn_q.weight", {&lw.wq});
    ex.add(p + "attn_k.weight", {&lw.wk});
    ex.add(p + "attn_v.weight", {&lw.wv});
    ex.add(p + "attn_output.weight", {&lw.wo});
    ex.add_vector(p + "ffn_norm.weight", lw.ffn_norm, c.dim);
    if (!c.is_moe()) {
      ex.add(p + "ffn_gate.weight", {&lw.experts[0].gate});
      ex.add(p + "ffn_up.weight", {&lw.experts[0].up});
      ex.add(p + "ffn_down.weight", {&lw.experts[0].down});
      continue;
    }
    ex.add(p + "ffn_gate_inp.weight", {&lw.router}, /*force_f32=*/true);
    std::vector<const Matrix*> g, u, d;
    for (const ExpertWeights& e : lw.experts) {
      g.push_back(&e.gate);
      u.push_back(&e.up);
      d.push_back(&e.down);
    }
    ex.add(p + "ffn_gate_exps.weight", g);
    ex.add(p + "ffn_up_exps.weight", u);
    ex.add(p + "ffn_down_exps.weight", d);
  }
}

}  // namespace

ConvertSummary convert_model(const ConvertOptions& o) {
  ModelOptions mo;
  mo.path = o.input;
  mo.tokenizer_path = o.tokenizer_path;
  auto model = Model::load(mo);
  const Model::Impl& m = model->impl();
  const ModelConfig& c = m.opened.config;
  DType target = DType::F32;
  if (!o.out_type.empty()) {
    auto t = dtype_from_name(o.out_type);
    if (!t || (*t != DType::F32 && *t != DType::F16 && *t != DType::BF16))
      fail(
          "convert: output type '{}' is not one of f32, f16, bf16 (quantized types: smoe quantize)",
          o.out_type);
    target = *t;
  }
  GgufWriter w;
  write_config(w, c, std::filesystem::path(o.input).filename().string());
  ConvertSummary s;
  if (model->tokenizer()) {
    write_tokenizer_gguf(*model->tokenizer(), w);
    s.has_tokenizer = true;
  }
  Exporter ex{w, target, o.out_type.empty(), o.progress};
  ex.total = 2 + (c.tied_embeddings ? 0 : 1) + c.n_layers * (c.is_moe() ? 10 : 9);
  ex.add("token_embd.weight", {&m.weights.tok_embeddings});
  write_layers(ex, c, m.weights);
  ex.add_vector("output_norm.weight", m.weights.output_norm, c.dim);
  if (!c.tied_embeddings) ex.add("output.weight", {&m.weights.output});
  w.write(o.output);
  s.n_tensors = ex.n_tensors;
  s.bytes = ex.bytes;
  return s;
}

}  // namespace smoe
