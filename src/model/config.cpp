#include "model/config.h"

#include "core/error.h"

namespace smoe {

void ModelConfig::validate(const std::string& origin) const {
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) fail("{}: model config field '{}' must be positive, got {}", origin, name, v);
  };
  positive("dim", dim);
  positive("n_layers", n_layers);
  positive("n_heads", n_heads);
  positive("n_kv_heads", n_kv_heads);
  positive("head_dim", head_dim);
  positive("hidden_dim", hidden_dim);
  positive("vocab_size", vocab_size);
  positive("max_context", max_context);
  if (n_heads % n_kv_heads != 0)
    fail("{}: n_heads ({}) is not a multiple of n_kv_heads ({})", origin, n_heads, n_kv_heads);
  if (head_dim % 2 != 0) fail("{}: head_dim ({}) must be even for RoPE", origin, head_dim);
  if (n_experts < 0 || n_experts_used < 0)
    fail("{}: negative expert counts ({} experts, {} used)", origin, n_experts, n_experts_used);
  if (n_experts > 0 && (n_experts_used < 1 || n_experts_used > n_experts))
    fail("{}: {} experts per token is not in 1..{}", origin, n_experts_used, n_experts);
  if (n_experts == 0 && n_experts_used > 0)
    fail("{}: {} experts per token but no experts", origin, n_experts_used);
  if (!(norm_eps > 0.0f) || !(norm_eps < 1.0f))
    fail("{}: norm_eps {} out of range", origin, norm_eps);
  if (!(rope_theta > 0.0f)) fail("{}: rope_theta {} must be positive", origin, rope_theta);
  if (sliding_window < 0) fail("{}: negative sliding_window {}", origin, sliding_window);
  if (dim > (1 << 20) || hidden_dim > (1 << 22) || vocab_size > (1 << 24) || n_layers > 4096 ||
      n_experts > 4096 || head_dim > 4096 || n_heads > 4096)
    fail("{}: implausible model size (dim {}, hidden {}, vocab {}, layers {}, experts {})", origin,
         dim, hidden_dim, vocab_size, n_layers, n_experts);
}

ParamCounts count_params(const ModelConfig& c) {
  const int64_t attn = c.dim * c.q_dim() * 2 + c.dim * c.kv_dim() * 2;  // wq, wo, wk, wv
  const int64_t expert = 3 * c.dim * c.hidden_dim;                      // w1, w2, w3
  const int64_t norms = 2 * c.dim;
  const int64_t n_exp = c.is_moe() ? c.n_experts : 1;
  const int64_t n_used = c.is_moe() ? c.n_experts_used : 1;
  const int64_t router = c.is_moe() ? c.dim * c.n_experts : 0;
  const int64_t embed = c.vocab_size * c.dim;
  const int64_t head = c.tied_embeddings ? 0 : c.vocab_size * c.dim;
  ParamCounts p;
  p.total = embed + head + c.dim + c.n_layers * (attn + norms + router + n_exp * expert);
  // One token reads one embedding row; the LM head is a full matrix.
  p.active = embed + head + c.dim + c.n_layers * (attn + norms + router + n_used * expert);
  return p;
}

}  // namespace smoe
