// Writes a bound model back out as GGUF. Works from the typed weights (not the raw file), so
// every source's conventions are normalised: per-expert tensors are stacked, HF's q/k rows are
// reordered as they are read. Streams: each tensor is made when the writer reaches it, a block of
// rows at a time, and its source pages are dropped once read, so memory does not grow with the
// model.
#include "smoe/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "engine/model_impl.h"
#include "io/gguf_writer.h"
#include "kernels/layout.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"
#include "tokenizer/gguf_vocab.h"

namespace smoe {
namespace {

// What a tensor is, for choosing its type.
enum class Kind { Embedding, Output, Attn, AttnQK, AttnV, FfnGateUp, FfnDown, Router };

// Which dtype each written tensor gets: keep, one type for all, or a "_M" mix that gives the
// most sensitive tensors (attention values and FFN down-projections of the first, last and every
// third layer, and the LM head) Q6_K. The router and norms always stay f32.
struct TypePolicy {
  bool keep = true;
  DType base = DType::F32;
  bool mix = false;
  int64_t n_layers = 1;

  bool more_bits(int64_t l) const {
    return l < n_layers / 8 || l >= 7 * n_layers / 8 || (l - n_layers / 8) % 3 == 2;
  }
  struct Choice {
    DType type;    // what is written
    DType wanted;  // what the policy asked for
  };
  Choice choose(Kind k, int64_t layer, const Matrix& m) const {
    if (k == Kind::Router) return {DType::F32, DType::F32};
    if (keep) return {m.dtype, m.dtype};
    DType t = base;
    if (mix && ((k == Kind::AttnV || k == Kind::FfnDown) ? more_bits(layer) : k == Kind::Output))
      t = DType::Q6_K;
    if (m.cols % dtype_info(t).block_size == 0) return {t, t};
    // Rows too short for k-quant blocks: reported, never silent (TensorReport::wanted).
    return {m.cols % 32 == 0 ? DType::Q8_0 : DType::F16, t};
  }
};

// One matrix to write: its rows in the interleaved-RoPE order, read from a source that may hold
// them in HF's rotate-half order (then in groups of `head_dim` rows).
struct SourceRows {
  const Matrix* m;
  int64_t head_dim = 0;  // > 0: row r is the source's row rotate_half_row(r, head_dim)
  int64_t row(int64_t r) const { return head_dim > 0 ? rotate_half_row(r, head_dim) : r; }
};

// About this many bytes of source rows are converted, written and released at a time.
constexpr size_t kBlockBytes = size_t{4} << 20;

// Rows per block for one matrix: a whole number of reorder groups, so that the source rows a
// block reads are the block's own rows.
int64_t block_rows(const SourceRows& s, size_t out_row) {
  const size_t row = std::max(s.m->row_bytes, out_row);
  const int64_t group = std::max<int64_t>(s.head_dim, 1);
  const int64_t groups = std::max<int64_t>(1, static_cast<int64_t>(kBlockBytes / row) / group);
  return std::min(groups * group, s.m->rows);
}

// Declares each tensor to the writer and makes its bytes when the writer asks for them, a block of
// rows at a time: memory holds one block, whatever the model's size, and each block's source
// pages are dropped once it is written.
struct Exporter {
  GgufWriter& w;
  const WeightSource& source;
  TypePolicy policy;
  std::function<void(int64_t, int64_t, uint64_t)> progress;
  int64_t total = 0;
  ConvertSummary summary;
  int64_t qk_head_dim = 0;  // > 0: q and k rows are HF's rotate-half rows (head_dim each)

  // Matrices stacked along a new outer dimension (one for a plain matrix).
  void add(const std::string& name, const std::vector<const Matrix*>& ms, Kind kind,
           int64_t layer = 0) {
    const Matrix& m0 = *ms[0];
    const auto [out, wanted] = policy.choose(kind, layer, m0);
    std::vector<SourceRows> rows;
    for (const Matrix* m : ms) rows.push_back({m, kind == Kind::AttnQK ? qk_head_dim : 0});
    std::vector<int64_t> shape{m0.rows, m0.cols};
    if (ms.size() > 1) shape.insert(shape.begin(), static_cast<int64_t>(ms.size()));
    const uint64_t nbytes = *dtype_bytes(out, m0.cols) * m0.rows * ms.size();
    const size_t i = summary.tensors.size();
    summary.tensors.push_back({name, std::string(dtype_name(out)), 0.0, nbytes,
                               wanted == out ? "" : std::string(dtype_name(wanted))});
    w.add_streamed_tensor(name, out, shape, [this, rows, out, i, nbytes](GgufTensorSink& sink) {
      summary.tensors[i].relative_rmse = write_rows(rows, out, sink);
      done(nbytes);
    });
  }

  void add_vector(const std::string& name, const float* v, int64_t n) {
    const uint64_t nbytes = static_cast<uint64_t>(n) * 4;
    summary.tensors.push_back({name, "F32", 0.0, nbytes, ""});
    w.add_streamed_tensor(name, DType::F32, {n}, [this, v, nbytes](GgufTensorSink& sink) {
      sink.write(v, nbytes);
      done(nbytes);
    });
  }

  // Writes the matrices' rows as `out`; returns the relative RMSE of the written values.
  double write_rows(const std::vector<SourceRows>& ms, DType out, GgufTensorSink& sink) const {
    const int64_t cols = ms[0].m->cols;
    const size_t out_row = *dtype_bytes(out, cols);
    std::vector<float> row(static_cast<size_t>(cols)), back(row.size());
    std::vector<uint8_t> buf;
    double err = 0, norm = 0;
    for (const SourceRows& s : ms) {
      const Matrix& m = *s.m;
      const int64_t block = block_rows(s, out_row);
      buf.resize(out_row * static_cast<size_t>(block));
      for (int64_t r0 = 0; r0 < m.rows; r0 += block) {
        const int64_t n = std::min(block, m.rows - r0);
        uint8_t* dst = buf.data();
        for (int64_t r = r0; r < r0 + n; ++r, dst += out_row) {
          if (out == m.dtype) {
            standard_row(m, s.row(r), reinterpret_cast<std::byte*>(dst));
            continue;
          }
          matrix_row_to_f32(m, s.row(r), row.data());
          quant::quantize_row(out, row.data(), dst, cols);
          quant::dequantize_row(out, dst, back.data(), cols);
          for (int64_t c = 0; c < cols; ++c) {
            err += static_cast<double>(row[c] - back[c]) * (row[c] - back[c]);
            norm += static_cast<double>(row[c]) * row[c];
          }
        }
        sink.write(buf.data(), out_row * static_cast<size_t>(n));
        source.release_pages(m.row(r0), m.row_bytes * static_cast<size_t>(n));
      }
    }
    return norm > 0 ? std::sqrt(err / norm) : 0.0;
  }

  void done(uint64_t b) {
    ++summary.n_tensors;
    summary.bytes += b;
    if (progress) progress(summary.n_tensors, total, summary.bytes);
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
    const int64_t li = static_cast<int64_t>(l);
    ex.add(p + "attn_q.weight", {&lw.wq}, Kind::AttnQK, li);
    ex.add(p + "attn_k.weight", {&lw.wk}, Kind::AttnQK, li);
    ex.add(p + "attn_v.weight", {&lw.wv}, Kind::AttnV, li);
    ex.add(p + "attn_output.weight", {&lw.wo}, Kind::Attn, li);
    ex.add_vector(p + "ffn_norm.weight", lw.ffn_norm, c.dim);
    if (!c.is_moe()) {
      ex.add(p + "ffn_gate.weight", {&lw.experts[0].gate}, Kind::FfnGateUp, li);
      ex.add(p + "ffn_up.weight", {&lw.experts[0].up}, Kind::FfnGateUp, li);
      ex.add(p + "ffn_down.weight", {&lw.experts[0].down}, Kind::FfnDown, li);
      continue;
    }
    ex.add(p + "ffn_gate_inp.weight", {&lw.router}, Kind::Router, li);
    std::vector<const Matrix*> g, u, d;
    for (const ExpertWeights& e : lw.experts) {
      g.push_back(&e.gate);
      u.push_back(&e.up);
      d.push_back(&e.down);
    }
    ex.add(p + "ffn_gate_exps.weight", g, Kind::FfnGateUp, li);
    ex.add(p + "ffn_up_exps.weight", u, Kind::FfnGateUp, li);
    ex.add(p + "ffn_down_exps.weight", d, Kind::FfnDown, li);
  }
}

}  // namespace

TypePolicy parse_type(const std::string& name, int64_t n_layers) {
  TypePolicy p;
  p.n_layers = n_layers;
  if (name.empty()) return p;
  p.keep = false;
  std::string base = name;
  for (char& ch : base) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (base.size() > 2 && (base.ends_with("_M") || base.ends_with("_S")) &&
      base.find("_K") != std::string::npos) {
    p.mix = base.ends_with("_M");
    base.resize(base.size() - 2);
  }
  const auto t = dtype_from_name(base);
  if (!t || !quant::can_quantize(*t))
    fail("output type '{}' is not one smoe writes ({})", name, kOutputTypes);
  p.base = *t;
  return p;
}

ConvertSummary convert_model(const ConvertOptions& o) {
  ModelOptions mo;
  mo.path = o.input;
  mo.tokenizer_path = o.tokenizer_path;
  // HF's q and k rows are reordered as they are read, not copied for every layer up front.
  const std::unique_ptr<Model::Impl> model = load_model_impl(mo, {.reorder_hf_qk = false});
  const Model::Impl& m = *model;
  const ModelConfig& c = m.opened.config;
  GgufWriter w;
  write_config(w, c, std::filesystem::path(o.input).filename().string());
  Exporter ex{.w = w,
              .source = *m.weights.source,
              .policy = parse_type(o.out_type, c.n_layers),
              .progress = o.progress,
              .total = 0,
              .summary = {},
              .qk_head_dim = m.weights.qk_rotate_half ? c.head_dim : 0};
  ex.total = 2 + (c.tied_embeddings ? 0 : 1) + c.n_layers * (c.is_moe() ? 10 : 9);
  if (m.tokenizer) {
    write_tokenizer_gguf(*m.tokenizer, w);
    ex.summary.has_tokenizer = true;
  }
  ex.add("token_embd.weight", {&m.weights.tok_embeddings}, Kind::Embedding);
  write_layers(ex, c, m.weights);
  ex.add_vector("output_norm.weight", m.weights.output_norm, c.dim);
  if (!c.tied_embeddings) ex.add("output.weight", {&m.weights.output}, Kind::Output);
  // Each tensor is made here, when the writer reaches it.
  w.write(o.output);
  return ex.summary;
}

}  // namespace smoe
