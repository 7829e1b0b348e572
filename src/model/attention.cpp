#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/ops.h"

namespace smoe {
namespace {

// Key or value of sequence position `j` for batch entry `i`: from this batch when the position
// is part of it, else from the cache (which still holds the positions before the batch).
struct KvLookup {
  const Workspace& ws;
  const KvCache& cache;
  int layer;
  int64_t kv_dim;

  const float* get(const BatchEntry& e, int64_t i, int64_t j, bool value) const {
    const int64_t start = ws.seq_start[i];
    if (j >= start) {
      const int64_t row = ws.seq_rows[ws.seq_first[e.seq] + (j - start)];
      return (value ? ws.v.data() : ws.k.data()) + row * kv_dim;
    }
    return value ? cache.value(e.seq, layer, j) : cache.key(e.seq, layer, j);
  }
};

// The query heads of one entry that share key/value head kvh: softmax(q·kᵀ/√d) v over the
// visible positions, every key and value read once for the whole group.
// q: the group's query heads; out: their outputs.
void attend_group(const ModelConfig& c, const KvLookup& kv, const VecOps& vec, const BatchEntry& e,
                  int64_t i, int64_t kvh, const float* q, float* scores, const float** rows,
                  float* out) {
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads, n_ctx = kv.cache.n_ctx();
  const int64_t lo = kv.cache.first_visible(e.pos), n_vis = e.pos - lo + 1;
  const float** keys = rows;
  const float** vals = rows + n_ctx;
  for (int64_t j = lo; j <= e.pos; ++j) {
    keys[j - lo] = kv.get(e, i, j, false) + kvh * hd;
    vals[j - lo] = kv.get(e, i, j, true) + kvh * hd;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int g = static_cast<int>(group);
  vec.scores_group(q, g, keys, n_vis, hd, scale, scores, n_ctx);
  for (int64_t h = 0; h < group; ++h) vec.softmax(scores + h * n_ctx, n_vis);
  vec.wsum_group(scores, n_ctx, g, vals, n_vis, hd, out);
}

// Projections: q (m, n_heads·hd) of the output entries, k and v (n, kv_dim) of all, RoPE'd.
void project_qkv(const ModelConfig& c, const LayerWeights& w, const BatchEntry* batch, int64_t n,
                 OutputRows out, Workspace& ws, const ForwardContext& ctx) {
  if (!out.rows) {
    const Matrix* wqkv[] = {&w.wq, &w.wk, &w.wv};
    float* qkv[] = {ws.q.data(), ws.k.data(), ws.v.data()};
    ctx.backend.matmul_multi(wqkv, qkv, 3, ws.xn.data(), n, ctx.pool);
  } else {
    const Matrix* wkv[] = {&w.wk, &w.wv};
    float* kv[] = {ws.k.data(), ws.v.data()};
    ctx.backend.matmul_multi(wkv, kv, 2, ws.xn.data(), n, ctx.pool);
    const int64_t dim = c.dim;  // the output entries' inputs move to the front (rows[j] ≥ j)
    for (int64_t j = 0; j < out.m; ++j)
      if (out.rows[j] != j)
        std::copy_n(ws.xn.data() + out.rows[j] * dim, dim, ws.xn.data() + j * dim);
    if (out.m > 0) ctx.backend.matmul(w.wq, ws.xn.data(), out.m, ws.q.data(), ctx.pool);
  }
  ctx.pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {  // key i; query row i (m ≤ n) of entry out.entry(i)
      ops::rope(ws.k.data() + i * c.kv_dim(), c.n_kv_heads, c.head_dim, batch[i].pos,
                ws.inv_freq.data());
      if (i < out.m)
        ops::rope(ws.q.data() + i * c.q_dim(), c.n_heads, c.head_dim, batch[out.entry(i)].pos,
                  ws.inv_freq.data());
    }
  });
}

}  // namespace

void attention_block(const ModelConfig& c, const LayerWeights& w, int layer,
                     const BatchEntry* batch, int64_t n, OutputRows out, Workspace& ws,
                     KvCache& cache, const ForwardContext& ctx) {
  project_qkv(c, w, batch, n, out, ws, ctx);

  // Every (output entry, key/value head) pair is independent.
  const KvLookup kv{ws, cache, layer, c.kv_dim()};
  const int64_t n_ctx = cache.n_ctx(), group = c.n_heads / c.n_kv_heads, m = out.m;
  const VecOps vec = ctx.backend.vec_ops();
  // In pre-fill an entry's cost grows with its position, so consecutive task numbers alternate
  // between the first and last output entries: each thread's range gets an even share.
  ctx.pool.parallel_for(m * c.n_kv_heads, [&](int t, int64_t b, int64_t e) {
    float* scores = ws.scores.data() + t * group * n_ctx;
    const float** rows = ws.kv_rows.data() + t * 2 * n_ctx;
    for (int64_t ih = b; ih < e; ++ih) {
      const int64_t k = ih / c.n_kv_heads, kvh = ih % c.n_kv_heads;
      const int64_t j = k % 2 ? m - 1 - k / 2 : k / 2, i = out.entry(j);
      const int64_t head = j * c.q_dim() + kvh * group * c.head_dim;
      attend_group(c, kv, vec, batch[i], i, kvh, ws.q.data() + head, scores, rows,
                   ws.att.data() + head);
    }
  });

  // The batch's keys and values join the cache; in a rolling buffer later positions overwrite
  // earlier ones of the same slot, leaving the last W.
  for (int64_t i = 0; i < n; ++i) {
    const BatchEntry& e = batch[i];
    std::copy_n(ws.k.data() + i * c.kv_dim(), c.kv_dim(), cache.key(e.seq, layer, e.pos));
    std::copy_n(ws.v.data() + i * c.kv_dim(), c.kv_dim(), cache.value(e.seq, layer, e.pos));
  }

  if (m > 0) ctx.backend.matmul(w.wo, ws.att.data(), m, ws.proj.data(), ctx.pool);
}

}  // namespace smoe
