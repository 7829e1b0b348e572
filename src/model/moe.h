// The feed-forward block: a sparse mixture of SwiGLU experts (Mixtral) or one dense SwiGLU
// (Mistral). For each token the router scores every expert, the top-k logits are soft-maxed and
// the chosen experts' outputs are summed with those weights:
//   y = Σ_{e ∈ topk} softmax(topk logits)_e · W2_e (silu(W1_e x) ⊙ W3_e x)
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/forward_context.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace smoe {

// ws.xn (n, dim) → ws.proj (n, dim).
void ffn_block(const ModelConfig& c, const LayerWeights& w, int layer, int64_t n, Workspace& ws,
               const ForwardContext& ctx);

// The k largest of `logits` (ties: lower expert id first) and their soft-maxed weights.
void route_top_k(const float* logits, int64_t n_experts, int k, int32_t* chosen, float* weights);

}  // namespace smoe
