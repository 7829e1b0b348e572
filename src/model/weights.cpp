#include "model/weights.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "io/file_reader.h"
#include "kernels/layout.h"

namespace smoe {
namespace {

class Binder {
 public:
  Binder(const WeightSource& src, NameScheme scheme, ModelWeights& out)
      : src_(src), scheme_(scheme), out_(out) {}

  const TensorView& get(WeightRole r, int layer, int expert, const std::vector<int64_t>& shape) {
    const std::string name = tensor_name(scheme_, r, layer, expert);
    const TensorView* t = src_.find(name);
    if (!t)
      fail("{}: missing tensor '{}' (expected shape {})", src_.description(), name,
           shape_string(shape));
    if (t->shape != shape)
      fail("{}: tensor '{}' in {} has shape {}, expected {}", src_.description(), name, t->file,
           shape_string(t->shape), shape_string(shape));
    if (!dtype_supported(t->dtype))
      fail("{}: tensor '{}' in {} has dtype {}, which smoe cannot compute with yet",
           src_.description(), name, t->file, dtype_name(t->dtype));
    return *t;
  }

  bool has(WeightRole r, int layer = 0, int expert = 0) const {
    return src_.find(tensor_name(scheme_, r, layer, expert)) != nullptr;
  }

  Matrix matrix(WeightRole r, int layer, int64_t rows, int64_t cols, int expert = 0) {
    return as_matrix(get(r, layer, expert, {rows, cols}), 0, rows, cols);
  }

  // Expert `e` of a merged (n_experts, rows, cols) tensor.
  static Matrix slice(const TensorView& t, int64_t e, int64_t rows, int64_t cols) {
    return as_matrix(t, e * rows, rows, cols);
  }

  const float* vector_f32(WeightRole r, int layer, int64_t n) {
    const TensorView& t = get(r, layer, 0, {n});
    std::vector<float>& v = out_.owned_f32.emplace_back(static_cast<size_t>(n));
    row_to_f32(t.dtype, t.data, v.data(), n);
    return v.data();
  }

  // Rows of a rotate-half (HF) q or k weight reordered into interleaved pairs.
  Matrix unpermute_rows(const Matrix& m, int64_t head_dim) {
    std::vector<std::byte>& buf = out_.owned_bytes.emplace_back(m.row_bytes * m.rows);
    for (int64_t r = 0; r < m.rows; ++r)
      std::memcpy(buf.data() + r * m.row_bytes, m.row(rotate_half_row(r, head_dim)), m.row_bytes);
    Matrix p = m;
    p.data = buf.data();
    return p;
  }

 private:
  static Matrix as_matrix(const TensorView& t, int64_t first_row, int64_t rows, int64_t cols) {
    Matrix m;
    m.dtype = t.dtype;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = *dtype_bytes(t.dtype, cols);
    m.data = t.data + static_cast<size_t>(first_row) * m.row_bytes;
    return m;
  }

  const WeightSource& src_;
  NameScheme scheme_;
  ModelWeights& out_;
};

void bind_ffn(Binder& b, const ModelConfig& c, NameScheme scheme, int l, LayerWeights& lw) {
  const int64_t dim = c.dim, hid = c.hidden_dim, ne = c.n_experts;
  if (!c.is_moe()) {
    lw.experts.push_back({b.matrix(WeightRole::DenseGate, l, hid, dim),
                          b.matrix(WeightRole::DenseUp, l, hid, dim),
                          b.matrix(WeightRole::DenseDown, l, dim, hid)});
    return;
  }
  lw.router = b.matrix(WeightRole::Router, l, ne, dim);
  if (scheme == NameScheme::Gguf && !b.has(WeightRole::ExpertGate, l, 0)) {
    const TensorView& g = b.get(WeightRole::MergedGate, l, 0, {ne, hid, dim});
    const TensorView& u = b.get(WeightRole::MergedUp, l, 0, {ne, hid, dim});
    const TensorView& d = b.get(WeightRole::MergedDown, l, 0, {ne, dim, hid});
    for (int64_t e = 0; e < ne; ++e)
      lw.experts.push_back({Binder::slice(g, e, hid, dim), Binder::slice(u, e, hid, dim),
                            Binder::slice(d, e, dim, hid)});
    return;
  }
  for (int e = 0; e < static_cast<int>(ne); ++e)
    lw.experts.push_back({b.matrix(WeightRole::ExpertGate, l, hid, dim, e),
                          b.matrix(WeightRole::ExpertUp, l, hid, dim, e),
                          b.matrix(WeightRole::ExpertDown, l, dim, hid, e)});
}

}  // namespace

ModelWeights bind_weights(std::shared_ptr<const WeightSource> src, const ModelConfig& c,
                          NameScheme scheme, const BindOptions& opts) {
  ModelWeights w;
  w.source = src;
  w.qk_rotate_half = scheme == NameScheme::HuggingFace && !opts.reorder_hf_qk;
  Binder b(*src, scheme, w);
  w.tok_embeddings = b.matrix(WeightRole::TokEmbd, 0, c.vocab_size, c.dim);
  w.output_norm = b.vector_f32(WeightRole::OutputNorm, 0, c.dim);
  const bool has_output = b.has(WeightRole::Output);
  w.output = has_output ? b.matrix(WeightRole::Output, 0, c.vocab_size, c.dim) : w.tok_embeddings;
  for (int l = 0; l < static_cast<int>(c.n_layers); ++l) {
    LayerWeights lw;
    lw.attn_norm = b.vector_f32(WeightRole::AttnNorm, l, c.dim);
    lw.wq = b.matrix(WeightRole::Wq, l, c.q_dim(), c.dim);
    lw.wk = b.matrix(WeightRole::Wk, l, c.kv_dim(), c.dim);
    lw.wv = b.matrix(WeightRole::Wv, l, c.kv_dim(), c.dim);
    lw.wo = b.matrix(WeightRole::Wo, l, c.dim, c.q_dim());
    if (scheme == NameScheme::HuggingFace && opts.reorder_hf_qk) {
      lw.wq = b.unpermute_rows(lw.wq, c.head_dim);
      lw.wk = b.unpermute_rows(lw.wk, c.head_dim);
    }
    lw.ffn_norm = b.vector_f32(WeightRole::FfnNorm, l, c.dim);
    bind_ffn(b, c, scheme, l, lw);
    w.layers.push_back(std::move(lw));
  }
  return w;
}

uint64_t adopt_layouts(ModelWeights& w, MatrixLayout (*choose)(const Matrix&), bool experts) {
  uint64_t bytes = 0;
  const auto adopt = [&](Matrix& m) {
    if (m.data == w.tok_embeddings.data || choose(m) != MatrixLayout::Rows8) return;
    // The bytes are the model's own (read into memory, or copied above): writable.
    interleave_rows8(m, const_cast<std::byte*>(m.data));
    bytes += m.row_bytes * static_cast<uint64_t>(m.rows);
  };
  for (LayerWeights& l : w.layers) {
    for (Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) adopt(*m);
    if (experts)
      for (ExpertWeights& e : l.experts)
        for (Matrix* m : {&e.gate, &e.up, &e.down}) adopt(*m);
  }
  adopt(w.output);
  return bytes;
}

std::vector<Matrix*> resident_matrices(ModelWeights& w) {
  std::vector<Matrix*> v{&w.tok_embeddings, &w.output};
  for (LayerWeights& l : w.layers)
    for (Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.router}) v.push_back(m);
  return v;
}

uint64_t resident_bytes(ModelWeights& w) {
  std::unordered_set<const std::byte*> seen;
  uint64_t total = 0;
  for (const Matrix* m : resident_matrices(w))
    if (m->rows > 0 && seen.insert(m->data).second) total += m->row_bytes * m->rows;
  return total;
}

uint64_t read_resident(ModelWeights& w, bool direct_io) {
  std::unordered_map<std::string, std::unique_ptr<FileReader>> readers;
  std::unordered_map<const std::byte*, const std::byte*> moved;  // the tied head follows
  uint64_t total = 0;
  const auto pull = [&](Matrix& m) {
    const size_t n = m.row_bytes * static_cast<size_t>(m.rows);
    if (n == 0) return;
    if (auto it = moved.find(m.data); it != moved.end()) {
      m.data = it->second;
      return;
    }
    const TensorView* t = w.source->containing(m.data, n);
    if (!t) return;  // already the model's own
    std::unique_ptr<FileReader>& r = readers[t->file];
    if (!r) r = std::make_unique<FileReader>(t->file, direct_io);
    auto& buf =
        w.owned_reads.emplace_back(alloc_read_buffer(FileReader::span_capacity(n)), std::free);
    const std::byte* p =
        r->read_span(t->file_offset + static_cast<uint64_t>(m.data - t->data), n, buf.get());
    moved[m.data] = p;
    m.data = p;
    total += n;
  };
  for (Matrix* m : resident_matrices(w)) pull(*m);
  return total;
}

}  // namespace smoe
