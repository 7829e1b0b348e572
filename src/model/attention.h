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

// Which batch entries need a block's output: all n (rows null), or the m entries rows[0 .. m),
// in increasing order.
struct OutputRows {
  const int64_t* rows = nullptr;
  int64_t m = 0;
  int64_t entry(int64_t j) const { return rows ? rows[j] : j; }
};

// ws.xn (n, dim) → ws.proj (m, dim): the attention output of the entries `out` names, row j for
// out.entry(j). Keys and values of all n entries join the cache either way. May overwrite
// ws.xn's rows with those of the output entries.
void attention_block(const ModelConfig& c, const LayerWeights& w, int layer,
                     const BatchEntry* batch, int64_t n, OutputRows out, Workspace& ws,
                     KvCache& cache, const ForwardContext& ctx);

}  // namespace smoe
