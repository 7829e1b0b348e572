#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/expert_store.h"

namespace smoe {
namespace {

// SwiGLU of one expert over m gathered rows: ws.xe (m, dim) → ws.ye (m, dim).
void run_expert(const ExpertWeights& e, int64_t m, Workspace& ws, const ForwardContext& ctx) {
  // h1 (m, hidden) = SiLU(xe · gateᵀ) ⊙ (xe · upᵀ); h3 holds the up product.
  ctx.backend.matmul_swiglu(e.gate, e.up, ws.xe.data(), m, ws.h1.data(), ws.h3.data(), ctx.pool);
  ctx.backend.matmul(e.down, ws.h1.data(), m, ws.ye.data(), ctx.pool);  // (m, dim)
}

// The distinct experts the batch's tokens chose, in id order.
std::vector<int32_t> distinct(const int32_t* chosen, int64_t n) {
  std::vector<int32_t> v(chosen, chosen + n);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The next layer's likely experts: its router applied to this layer's normalised input, top-k per
// token (the residual stream changes slowly from layer to layer). Uses ws.router_logits.
std::vector<int32_t> guess_next(const ModelConfig& c, const LayerWeights& next, int64_t n,
                                Workspace& ws, const ForwardContext& ctx) {
  const int k = static_cast<int>(c.n_experts_used);
  ctx.backend.matmul(next.router, ws.xn.data(), n, ws.router_logits.data(), ctx.pool);
  std::vector<int32_t> chosen(static_cast<size_t>(n * k));
  std::vector<float> weights(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i)
    route_top_k(ws.router_logits.data() + i * c.n_experts, c.n_experts, k, chosen.data() + i * k,
                weights.data());
  return distinct(chosen.data(), n * k);
}

// Tells the store what this layer needs and what the next may; null when there is no store.
void plan_layer(const ModelConfig& c, int layer, int64_t n, const std::vector<int32_t>& needed,
                Workspace& ws, const ForwardContext& ctx, ExpertSupply supply) {
  if (!supply.store) return;
  std::vector<int32_t> guess;
  if (supply.store->prefetch_enabled() && supply.next && supply.next->router.rows > 0)
    guess = guess_next(c, *supply.next, n, ws, ctx);
  else if (supply.store->prefetch_enabled() && supply.next)
    guess = {0};  // a dense model's next layer
  supply.store->begin_layer(layer, needed, guess);
}

// Runs expert e of the layer over ws.xe's m rows, from the layer's weights or the store.
void run_supplied(const LayerWeights& w, int layer, int e, int64_t m, Workspace& ws,
                  const ForwardContext& ctx, ExpertSupply supply) {
  if (!supply.store) return run_expert(w.experts[static_cast<size_t>(e)], m, ws, ctx);
  const ExpertWeights& ew = supply.store->acquire(layer, e);
  try {
    run_expert(ew, m, ws, ctx);
  } catch (...) {
    supply.store->release(layer, e);
    throw;
  }
  supply.store->release(layer, e);
}

}  // namespace

void route_top_k(const float* logits, int64_t n_experts, int k, int32_t* chosen, float* weights) {
  for (int j = 0; j < k; ++j) {
    int32_t best = -1;
    for (int32_t e = 0; e < n_experts; ++e) {
      if (std::find(chosen, chosen + j, e) != chosen + j) continue;
      if (best < 0 || logits[e] > logits[best]) best = e;
    }
    chosen[j] = best;
    weights[j] = logits[best];
  }
  ops::softmax(weights, k);
}

void ffn_block(const ModelConfig& c, const LayerWeights& w, int layer, int64_t n, Workspace& ws,
               const ForwardContext& ctx, ExpertSupply supply) {
  const int64_t dim = c.dim;
  if (!c.is_moe()) {  // dense: all rows through the one FFN
    plan_layer(c, layer, n, {0}, ws, ctx, supply);
    std::memcpy(ws.xe.data(), ws.xn.data(), sizeof(float) * n * dim);
    run_supplied(w, layer, 0, n, ws, ctx, supply);
    std::memcpy(ws.proj.data(), ws.ye.data(), sizeof(float) * n * dim);
    return;
  }

  // Router: (n, n_experts) logits, then top-k per token.
  const int k = static_cast<int>(c.n_experts_used);
  ctx.backend.matmul(w.router, ws.xn.data(), n, ws.router_logits.data(), ctx.pool);
  for (int64_t i = 0; i < n; ++i) {
    route_top_k(ws.router_logits.data() + i * c.n_experts, c.n_experts, k, ws.chosen.data() + i * k,
                ws.chosen_w.data() + i * k);
    if (ctx.observer)
      ctx.observer->on_routing(layer, i, ws.chosen.data() + i * k, ws.chosen_w.data() + i * k, k);
  }
  plan_layer(c, layer, n, distinct(ws.chosen.data(), n * k), ws, ctx, supply);

  // Each expert runs once over all rows routed to it, so its weights stream once per batch.
  // A token's output accumulates in expert-id order, whatever else is in the batch.
  std::fill_n(ws.proj.data(), n * dim, 0.0f);
  for (int32_t e = 0; e < c.n_experts; ++e) {
    int64_t m = 0;
    for (int64_t ij = 0; ij < n * k; ++ij) {
      if (ws.chosen[ij] != e) continue;
      std::memcpy(ws.xe.data() + m * dim, ws.xn.data() + (ij / k) * dim, sizeof(float) * dim);
      ws.expert_rows[m++] = ij;  // entry i = ij / k, choice slot = ij % k
    }
    if (m == 0) continue;
    run_supplied(w, layer, e, m, ws, ctx, supply);
    ctx.pool.parallel_for(m, kMinSharedWork / dim,
                          [&](int, int64_t b, int64_t end) {  // distinct tokens
                            for (int64_t r = b; r < end; ++r) {
                              const int64_t ij = ws.expert_rows[r];
                              ops::axpy(ws.proj.data() + (ij / k) * dim, ws.chosen_w[ij],
                                        ws.ye.data() + r * dim, dim);
                            }
                          });
  }
}

}  // namespace smoe
