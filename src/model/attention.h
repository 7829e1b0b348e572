// Causal multi-head attention with grouped KV heads, RoPE and an optional sliding window, over a
// batch of (token, pos, seq) entries and the KV cache.
#pragma once

#include <cstdint>

#include "model/batch.h"
#include "model/config.h"
#include "model/forward_context.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace smoe {

// ws.xn (n, dim) → ws.proj (n, dim). Also stores the batch's keys and values in the cache.
void attention_block(const ModelConfig& c, const LayerWeights& w, int layer,
                     const BatchEntry* batch, int64_t n, Workspace& ws, KvCache& cache,
                     const ForwardContext& ctx);

}  // namespace smoe
