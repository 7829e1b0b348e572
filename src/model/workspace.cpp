#include "model/workspace.h"

#include <cmath>

namespace smoe {

Workspace::Workspace(const ModelConfig& c, int64_t b, int64_t n_ctx, int n_threads, DType kv)
    : max_batch(b),
      x(b * c.dim),
      xn(b * c.dim),
      q(b * c.q_dim()),
      k(b * c.kv_dim()),
      v(b * c.kv_dim()),
      att(b * c.q_dim()),
      proj(b * c.dim),
      scores(static_cast<size_t>(n_threads) * (c.n_heads / c.n_kv_heads) * n_ctx),
      kv_rows(kv == DType::F32 ? static_cast<size_t>(n_threads) * 2 * n_ctx : 0),
      kv_rows_f16(kv == DType::F16 ? static_cast<size_t>(n_threads) * 2 * n_ctx : 0),
      kv_rows_q8(kv == DType::Q8_0 ? static_cast<size_t>(n_threads) * 2 * n_ctx : 0),
      inv_freq(c.head_dim / 2),
      router_logits(b * (c.is_moe() ? c.n_experts : 1)),
      chosen(b * (c.is_moe() ? c.n_experts_used : 1)),
      chosen_w(b * (c.is_moe() ? c.n_experts_used : 1)),
      expert_rows(b * (c.is_moe() ? c.n_experts_used : 1)),
      xe(b * c.dim),
      h1(b * c.hidden_dim),
      h3(b * c.hidden_dim),
      ye(b * c.dim),
      out_rows(b) {
  for (int64_t i = 0; i < c.head_dim / 2; ++i)
    inv_freq[i] = static_cast<float>(
        std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim));
}

}  // namespace smoe
