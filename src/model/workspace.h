// Activation buffers of one forward pass, sized once from the config and the largest batch, so
// the forward pass itself allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"
#include "quant/blocks.h"

namespace smoe {

struct Workspace {
  // kv_dtype: the KV cache's row type (sizes the row-pointer buffer of that type only).
  Workspace(const ModelConfig& c, int64_t max_batch, int64_t n_ctx, int n_threads, DType kv_dtype);

  int64_t max_batch;
  std::vector<float> x;       // (batch, dim) residual stream
  std::vector<float> xn;      // (batch, dim) normalised input of a block
  std::vector<float> q;       // (batch, n_heads·head_dim)
  std::vector<float> k;       // (batch, kv_dim)
  std::vector<float> v;       // (batch, kv_dim)
  std::vector<float> att;     // (batch, n_heads·head_dim) attention output before wo
  std::vector<float> proj;    // (batch, dim) block output before the residual add
  std::vector<float> scores;  // (n_threads, group, n_ctx) scores of one group of query heads
  // (n_threads, 2, n_ctx) cache rows of one kv head, keys then values, in the cache's dtype
  std::vector<const float*> kv_rows;
  std::vector<const uint16_t*> kv_rows_f16;
  std::vector<const quant::BlockQ8_0*> kv_rows_q8;
  std::vector<float> inv_freq;  // (head_dim/2) RoPE frequencies θ^(-2i/head_dim)

  // Mixture of experts.
  std::vector<float> router_logits;  // (batch, n_experts)
  std::vector<int32_t> chosen;       // (batch, k) expert ids
  std::vector<float> chosen_w;       // (batch, k) their weights
  std::vector<int64_t> expert_rows;  // (batch·k) batch rows grouped by expert
  std::vector<float> xe;             // (batch, dim) gathered inputs of one expert
  std::vector<float> h1;             // (batch, hidden) gate activations
  std::vector<float> h3;             // (batch, hidden) up activations
  std::vector<float> ye;             // (batch, dim) expert outputs

  std::vector<int64_t> out_rows;  // (batch) entries that want logits, in batch order
  std::vector<int64_t> seq_last;  // (max_seqs) one past each sequence's last position, -1: absent
};

}  // namespace smoe
