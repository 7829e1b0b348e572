// Typed weights of a Mistral / Mixtral model, bound once at load and checked against the config:
// every tensor present, of a supported dtype, of the expected shape. The matrices point into the
// weight source (mmap'd files); only small tensors (norms) and HF's permuted q/k are copied.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "io/weight_source.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/tensor_names.h"

namespace smoe {

struct ExpertWeights {
  Matrix gate;  // w1: (hidden, dim)
  Matrix up;    // w3: (hidden, dim)
  Matrix down;  // w2: (dim, hidden)
};

struct LayerWeights {
  const float* attn_norm = nullptr;    // (dim)
  Matrix wq;                           // (n_heads·head_dim, dim)
  Matrix wk;                           // (n_kv_heads·head_dim, dim)
  Matrix wv;                           // (n_kv_heads·head_dim, dim)
  Matrix wo;                           // (dim, n_heads·head_dim)
  const float* ffn_norm = nullptr;     // (dim)
  Matrix router;                       // (n_experts, dim); rows == 0 for a dense layer
  std::vector<ExpertWeights> experts;  // n_experts, or the single dense FFN
};

class ExpertStore;

struct ModelWeights {
  Matrix tok_embeddings;               // (vocab, dim)
  const float* output_norm = nullptr;  // (dim)
  Matrix output;                       // (vocab, dim); the embedding when tied
  std::vector<LayerWeights> layers;

  std::shared_ptr<const WeightSource> source;      // keeps the mapped files alive
  std::deque<std::vector<float>> owned_f32;        // norms converted to f32
  std::deque<std::vector<std::byte>> owned_bytes;  // HF q/k rows in interleaved-RoPE order
  std::deque<std::unique_ptr<std::byte, void (*)(void*)>> owned_reads;  // read_resident's
  // Under a memory budget: the experts' home (their matrices above stay views of the file).
  std::shared_ptr<ExpertStore> expert_store;
  // wq and wk are views of HF's rotate-half rows, not yet in interleaved order
  // (BindOptions::reorder_hf_qk false): interleaved row r is their row rotate_half_row(r, ...).
  bool qk_rotate_half = false;
};

struct BindOptions {
  // With NameScheme::HuggingFace: copy q and k rows into interleaved-RoPE order, what attention
  // computes with. A converter, which reads each row once, leaves them in place (and does not
  // hold a copy of every layer's q and k) and reorders them as it reads.
  bool reorder_hf_qk = true;
};

// Binds and checks every tensor. Errors name the tensor, the source and expected vs actual.
// With NameScheme::HuggingFace, q and k rows are permuted from rotate-half to interleaved RoPE
// order (k with the KV head count) so all sources compute identically.
ModelWeights bind_weights(std::shared_ptr<const WeightSource> src, const ModelConfig& cfg,
                          NameScheme scheme, const BindOptions& opts = {});

// The rotate-half (HF) row holding interleaved-RoPE row `r` of a q or k weight:
// interleaved row (h, 2j+s) = HF row (h, s·head_dim/2 + j).
inline int64_t rotate_half_row(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, i = r % head_dim;
  return h * head_dim + (i % 2) * (head_dim / 2) + i / 2;
}

// Rearranges in place every matrix for which choose() names a layout other than the file's
// (kernels/layout.h), so that the kernels read it without rearranging it at every call; returns
// the bytes rearranged. Only for weights read into memory the model owns: mmap'd pages are
// read-only and the page cache's. The embedding table (read by rows) keeps the file's layout, and
// so does an output head tied to it. The source's views of those tensors then describe the new
// layout: read the weights through these matrices.
// `experts` false: the experts keep theirs (they live in an ExpertStore, which lays them out).
uint64_t adopt_layouts(ModelWeights& w, MatrixLayout (*choose)(const Matrix&), bool experts = true);

// Every matrix but the experts': embeddings, output head (the embedding again when tied),
// attention, routers. What every token uses, so what stays resident under a memory budget.
std::vector<Matrix*> resident_matrices(ModelWeights& w);

// Their bytes, a tied head counted once.
uint64_t resident_bytes(ModelWeights& w);

// Reads resident_matrices(w) from the files into memory the model owns, with positioned reads,
// and points the matrices there; returns the bytes read. Matrices already copied out of the
// files are left as they are.
uint64_t read_resident(ModelWeights& w, bool direct_io);

}  // namespace smoe
