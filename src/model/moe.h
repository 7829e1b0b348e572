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

class ExpertStore;

// Where the experts' weights are: in `w` itself, or (under a memory budget) in an expert store,
// which is told the layer's experts and a guess at the next layer's (`next`'s router applied to
// this layer's normalised input) before they are acquired one at a time.
struct ExpertSupply {
  ExpertStore* store = nullptr;
  const LayerWeights* next = nullptr;
};

// ws.xn (n, dim) → ws.proj (n, dim).
void ffn_block(const ModelConfig& c, const LayerWeights& w, int layer, int64_t n, Workspace& ws,
               const ForwardContext& ctx, ExpertSupply supply = {});

// The k largest of `logits` (ties: lower expert id first) and their soft-maxed weights.
void route_top_k(const float* logits, int64_t n_experts, int k, int32_t* chosen, float* weights);

}  // namespace smoe
