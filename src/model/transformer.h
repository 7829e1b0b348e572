// The decoder: embedding → N × (attention block, feed-forward block) → norm → LM head, over a batch
// of (token, pos, seq) entries with a KV cache. Owns its activation buffers; allocates nothing
// per call.
#pragma once

#include <cstdint>

#include "model/attention.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/forward_context.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace smoe {

class Transformer {
 public:
  Transformer(const ModelConfig& cfg, const ModelWeights& weights, int64_t max_batch, int64_t n_ctx,
              int n_threads, DType kv_dtype);

  int64_t max_batch() const { return ws_.max_batch; }

  // Checks the batch against the cache (token ids in range; each sequence's entries at
  // consecutive positions starting at its current length; within the context; without a window,
  // room in the cache's pool), of any length. Throws smoe::Error describing the first problem;
  // changes nothing then.
  void check_batch(const BatchEntry* batch, int64_t n, const KvCache& cache) const;

  // Runs a checked batch of at most max_batch() entries. Writes the logits of the entries with
  // `logits` set to `logits` (n_out, vocab), in batch order, and advances the sequences. The last
  // layer runs past its attention only for those entries (all of them under an observer). Throws,
  // changing nothing, when the cache's pool has too few free blocks for the batch.
  void forward(const BatchEntry* batch, int64_t n, KvCache& cache, float* logits,
               const ForwardContext& ctx);

 private:
  void grow_sequences(const BatchEntry* batch, int64_t n, KvCache& cache);
  void keep_rows(OutputRows out);

  const ModelConfig& cfg_;
  const ModelWeights& w_;
  Workspace ws_;
};

}  // namespace smoe
