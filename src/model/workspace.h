// Activation buffers of one forward pass, sized once from the config and the largest batch, so
// the forward pass itself allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace smoe {

struct Workspace {
  Workspace(const ModelConfig& c, int64_t max_batch, int64_t n_ctx, int n_threads);

  int64_t max_batch;
  std::vector<float> x;       // (batch, dim) residual stream
  std::vector<float> xn;      // (batch, dim) normalised input of a block
  std::vector<float> q;       // (batch, n_heads·head_dim)
  std::vector<float> k;       // (batch, kv_dim)
  std::vector<float> v;       // (batch, kv_dim)
  std::vector<float> att;     // (batch, n_heads·head_dim) attention output before wo
  std::vector<float> proj;    // (batch, dim) block output before the residual add
  std::vector<float> scores;  // (n_threads, group, n_ctx) scores of one group of query heads
  std::vector<const float*> kv_rows;  // (n_threads, 2, n_ctx) keys, then values, one kv head
  std::vector<float> inv_freq;        // (head_dim/2) RoPE frequencies θ^(-2i/head_dim)

  // Mixture of experts.
  std::vector<float> router_logits;  // (batch, n_experts)
  std::vector<int32_t> chosen;       // (batch, k) expert ids
  std::vector<float> chosen_w;       // (batch, k) their weights
  std::vector<int64_t> expert_rows;  // (batch·k) batch rows grouped by expert
  std::vector<float> xe;             // (batch, dim) gathered inputs of one expert
  std::vector<float> h1;             // (batch, hidden) gate activations
  std::vector<float> h3;             // (batch, hidden) up activations
  std::vector<float> ye;             // (batch, dim) expert outputs

  // Batch bookkeeping: for each entry, the first position of its sequence in this batch, and the
  // batch rows of each sequence in position order.
  std::vector<int64_t> seq_start;  // (batch)
  std::vector<int64_t> seq_first;  // (max_seqs) first batch-row slot in seq_rows, -1 if absent
  std::vector<int64_t> seq_rows;   // (batch)
  std::vector<int64_t> seq_count;  // (max_seqs)
  std::vector<int64_t> out_rows;   // (batch) entries that want logits, in batch order
};

}  // namespace smoe
