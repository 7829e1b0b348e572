#include "model/transformer.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "model/attention.h"
#include "model/moe.h"

namespace smoe {

Transformer::Transformer(const ModelConfig& cfg, const ModelWeights& weights, int64_t max_batch,
                         int64_t n_ctx, int n_threads, DType kv_dtype)
    : cfg_(cfg), w_(weights), ws_(cfg, max_batch, n_ctx, n_threads, kv_dtype) {}

namespace {

// Throws unless the pool has the blocks every sequence needs to reach its length in `lens`
// (-1: not in the batch).
void check_room(const KvCache& cache, const std::vector<int64_t>& lens) {
  int64_t need = 0;
  for (size_t s = 0; s < lens.size(); ++s)
    if (lens[s] >= 0) need += cache.blocks_needed(static_cast<int>(s), lens[s]);
  if (need > cache.free_blocks())
    fail("the KV cache is full: the batch needs {} blocks of {} positions, {} are free", need,
         cache.block_tokens(), cache.free_blocks());
}

}  // namespace

void Transformer::check_batch(const BatchEntry* batch, int64_t n, const KvCache& cache) const {
  std::vector<int64_t> next(static_cast<size_t>(cache.max_seqs()), -1);
  for (int64_t i = 0; i < n; ++i) {
    const BatchEntry& e = batch[i];
    if (e.token < 0 || e.token >= cfg_.vocab_size)
      fail("token id {} at batch entry {} is outside the vocabulary (0..{})", e.token, i,
           cfg_.vocab_size - 1);
    if (e.seq < 0 || e.seq >= cache.max_seqs())
      fail("sequence id {} at batch entry {} is outside 0..{}", e.seq, i, cache.max_seqs() - 1);
    int64_t& expect = next[static_cast<size_t>(e.seq)];
    if (expect < 0) expect = cache.seq_len(e.seq);
    if (e.pos != expect)
      fail(
          "batch entry {} of sequence {} is at position {}, expected {} (positions of a "
          "sequence must continue its cache in order)",
          i, e.seq, e.pos, expect);
    if (e.pos >= cache.n_ctx())
      fail("sequence {} would reach position {}, beyond the context size of {} tokens", e.seq,
           e.pos + 1, cache.n_ctx());
    ++expect;
  }
  // Without a window nothing is released along the way: the whole batch must fit now. (With a
  // window each pass is checked by forward, after the passes before it released their blocks.)
  if (cache.window() == 0) check_room(cache, next);
}

// Makes room in the cache for every sequence of the batch up to its last position in the batch:
// for all of them or, when the pool has too few free blocks, for none.
void Transformer::grow_sequences(const BatchEntry* batch, int64_t n, KvCache& cache) {
  std::vector<int64_t>& last = ws_.seq_last;
  last.assign(static_cast<size_t>(cache.max_seqs()), -1);
  for (int64_t i = 0; i < n; ++i)
    last[batch[i].seq] = std::max(last[batch[i].seq], batch[i].pos + 1);
  check_room(cache, last);
  for (size_t s = 0; s < last.size(); ++s)
    if (last[s] >= 0) cache.grow(static_cast<int>(s), last[s]);
}

void Transformer::forward(const BatchEntry* batch, int64_t n, KvCache& cache, float* logits,
                          const ForwardContext& ctx) {
  const int64_t dim = cfg_.dim;
  if (n > max_batch()) fail("batch of {} tokens exceeds the maximum of {}", n, max_batch());
  grow_sequences(batch, n, cache);

  // x (n, dim) = token embeddings
  for (int64_t i = 0; i < n; ++i)
    row_to_f32(w_.tok_embeddings.dtype, w_.tok_embeddings.row(batch[i].token),
               ws_.x.data() + i * dim, dim);

  // Row-wise steps over the first `rows` rows, split over the threads: xn = RMSNorm(x); x += proj.
  const auto norm = [&](const float* w, int64_t rows) {
    ctx.pool.parallel_for(rows, kMinSharedWork / dim, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        ops::rmsnorm(ws_.xn.data() + i * dim, ws_.x.data() + i * dim, w, dim, cfg_.norm_eps);
    });
  };
  const auto residual = [&](int64_t rows) {
    ctx.pool.parallel_for(rows, kMinSharedWork / dim, [&](int, int64_t b, int64_t e) {
      ops::axpy(ws_.x.data() + b * dim, 1.0f, ws_.proj.data() + b * dim, (e - b) * dim);
    });
  };

  // The last layer's output matters only at the entries that want logits (the keys and values of
  // all entries still join the cache), unless an observer follows every entry's routing.
  int64_t n_out = 0;
  for (int64_t i = 0; i < n; ++i)
    if (batch[i].logits) ws_.out_rows[n_out++] = i;
  const bool trim = !ctx.observer && n_out < n;

  const int n_layers = static_cast<int>(cfg_.n_layers);
  for (int l = 0; l < n_layers; ++l) {
    const LayerWeights& lw = w_.layers[l];
    const OutputRows out =
        trim && l == n_layers - 1 ? OutputRows{ws_.out_rows.data(), n_out} : OutputRows{nullptr, n};
    // x = x + Attention(RMSNorm(x)), at the output entries
    norm(lw.attn_norm, n);
    attention_block(cfg_, lw, l, batch, n, out, ws_, cache, ctx);
    if (out.m == 0) continue;  // no entry wants logits: its keys and values were all it needed
    if (out.rows) keep_rows(out);
    residual(out.m);
    // x = x + MoE(RMSNorm(x))
    norm(lw.ffn_norm, out.m);
    ffn_block(cfg_, lw, l, out.m, ws_, ctx,
              {w_.expert_store.get(), l + 1 < n_layers ? &w_.layers[l + 1] : nullptr});
    residual(out.m);
  }

  for (size_t s = 0; s < ws_.seq_last.size(); ++s)
    if (ws_.seq_last[s] >= 0) cache.set_len(static_cast<int>(s), ws_.seq_last[s]);

  // logits (n_out, vocab) = LM head(RMSNorm(x)) of the entries that asked for them
  for (int64_t j = 0; j < n_out; ++j) {
    const int64_t row = trim ? j : ws_.out_rows[j];
    ops::rmsnorm(ws_.xn.data() + j * dim, ws_.x.data() + row * dim, w_.output_norm, dim,
                 cfg_.norm_eps);
  }
  if (n_out > 0) ctx.backend.matmul(w_.output, ws_.xn.data(), n_out, logits, ctx.pool);
}

// The residual stream keeps only the output entries' rows, moved to the front (rows[j] ≥ j).
void Transformer::keep_rows(OutputRows out) {
  const int64_t dim = cfg_.dim;
  for (int64_t j = 0; j < out.m; ++j)
    if (out.rows[j] != j)
      std::copy_n(ws_.x.data() + out.rows[j] * dim, dim, ws_.x.data() + j * dim);
}

}  // namespace smoe
