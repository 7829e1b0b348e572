#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/ops.h"
#include "quant/blocks.h"

namespace smoe {
namespace {

// The attention kernels of one KV-cache row type: f32, f16 (uint16_t bits) or Q8_0 blocks.
template <typename Row>
struct RowKernels {
  void (*scores)(const float* q, int g, const Row* const* keys, int64_t n, int64_t hd, float scale,
                 float* scores, int64_t s_stride);
  void (*wsum)(const float* p, int64_t p_stride, int g, const Row* const* vals, int64_t n,
               int64_t hd, float* out);
};

RowKernels<float> row_kernels(const VecOps& v, const float*) {
  return {v.scores_group, v.wsum_group};
}
RowKernels<uint16_t> row_kernels(const VecOps& v, const uint16_t*) {
  return {v.scores_group_f16, v.wsum_group_f16};
}
RowKernels<quant::BlockQ8_0> row_kernels(const VecOps& v, const quant::BlockQ8_0*) {
  return {v.scores_group_q8_0, v.wsum_group_q8_0};
}

std::vector<const float*>& row_buffer(Workspace& ws, const float*) {
  return ws.kv_rows;
}
std::vector<const uint16_t*>& row_buffer(Workspace& ws, const uint16_t*) {
  return ws.kv_rows_f16;
}
std::vector<const quant::BlockQ8_0*>& row_buffer(Workspace& ws, const quant::BlockQ8_0*) {
  return ws.kv_rows_q8;
}

// The query heads of one entry that share key/value head kvh: softmax(q·kᵀ/√d) v over the
// visible positions, every key and value read once for the whole group. q: the group's query
// heads; out: their outputs; rows: room for 2·n_ctx row pointers.
template <typename Row>
void attend_group(const ModelConfig& c, const KvCache& cache, int layer, const RowKernels<Row>& k,
                  const VecOps& vec, const BatchEntry& e, int64_t kvh, const float* q,
                  float* scores, const Row** rows, float* out) {
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads, n_ctx = cache.n_ctx();
  const int64_t lo = cache.first_visible(e.pos), n_vis = e.pos - lo + 1;
  const Row** keys = rows;
  const Row** vals = rows + n_ctx;
  for (int64_t j = lo; j <= e.pos; ++j) {
    keys[j - lo] = reinterpret_cast<const Row*>(cache.key(e.seq, layer, j, kvh));
    vals[j - lo] = reinterpret_cast<const Row*>(cache.value(e.seq, layer, j, kvh));
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int g = static_cast<int>(group);
  k.scores(q, g, keys, n_vis, hd, scale, scores, n_ctx);
  for (int64_t h = 0; h < group; ++h) vec.softmax(scores + h * n_ctx, n_vis);
  k.wsum(scores, n_ctx, g, vals, n_vis, hd, out);
}

// Every (output entry, key/value head) pair of the batch, over the cache's rows of type Row.
template <typename Row>
void attend_all(const ModelConfig& c, int layer, const BatchEntry* batch, OutputRows out,
                Workspace& ws, const KvCache& cache, const ForwardContext& ctx) {
  const VecOps vec = ctx.backend.vec_ops();
  const RowKernels<Row> k = row_kernels(vec, static_cast<const Row*>(nullptr));
  std::vector<const Row*>& buffer = row_buffer(ws, static_cast<const Row*>(nullptr));
  const int64_t n_ctx = cache.n_ctx(), group = c.n_heads / c.n_kv_heads, m = out.m;
  // In pre-fill an entry's cost grows with its position, so consecutive task numbers alternate
  // between the first and last output entries: each thread's range gets an even share. A batch
  // of short contexts (a tiny model's) is not worth sharing.
  int64_t span = 1;  // the most positions an entry attends to
  for (int64_t j = 0; j < m; ++j) span = std::max(span, batch[out.entry(j)].pos + 1);
  const int64_t grain = kMinSharedWork / (2 * span * group * c.head_dim);
  ctx.pool.parallel_for(m * c.n_kv_heads, grain, [&](int t, int64_t b, int64_t e) {
    float* scores = ws.scores.data() + t * group * n_ctx;
    const Row** rows = buffer.data() + t * 2 * n_ctx;
    for (int64_t ih = b; ih < e; ++ih) {
      const int64_t kk = ih / c.n_kv_heads, kvh = ih % c.n_kv_heads;
      const int64_t j = kk % 2 ? m - 1 - kk / 2 : kk / 2, i = out.entry(j);
      const int64_t head = j * c.q_dim() + kvh * group * c.head_dim;
      attend_group(c, cache, layer, k, vec, batch[i], kvh, ws.q.data() + head, scores, rows,
                   ws.att.data() + head);
    }
  });
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
  ctx.pool.parallel_for(n, kMinSharedWork / c.dim, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {  // key i; query row i (m ≤ n) of entry out.entry(i)
      ops::rope(ws.k.data() + i * c.kv_dim(), c.n_kv_heads, c.head_dim, batch[i].pos,
                ws.inv_freq.data());
      if (i < out.m)
        ops::rope(ws.q.data() + i * c.q_dim(), c.n_heads, c.head_dim, batch[out.entry(i)].pos,
                  ws.inv_freq.data());
    }
  });
}

// The batch's keys and values join the cache, in its dtype, before anyone attends: every query
// then reads every key the same way, whatever batch or chunk brought it.
void store_kv(const ModelConfig& c, int layer, const BatchEntry* batch, int64_t n, Workspace& ws,
              KvCache& cache, const ForwardContext& ctx) {
  const VecOps vec = ctx.backend.vec_ops();
  const int64_t kv_dim = c.kv_dim(), hd = c.head_dim;
  const DType t = cache.dtype();
  const auto put = [&](const float* x, std::byte* dst) {
    if (t == DType::F16)
      vec.to_f16(x, reinterpret_cast<uint16_t*>(dst), hd);
    else if (t == DType::Q8_0)
      vec.to_q8_0(x, reinterpret_cast<quant::BlockQ8_0*>(dst), hd);
    else
      std::memcpy(dst, x, sizeof(float) * hd);
  };
  ctx.pool.parallel_for(n, kMinSharedWork / c.dim, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        const BatchEntry& be = batch[i];
        put(ws.k.data() + i * kv_dim + h * hd, cache.key(be.seq, layer, be.pos, h));
        put(ws.v.data() + i * kv_dim + h * hd, cache.value(be.seq, layer, be.pos, h));
      }
  });
}

}  // namespace

void attention_block(const ModelConfig& c, const LayerWeights& w, int layer,
                     const BatchEntry* batch, int64_t n, OutputRows out, Workspace& ws,
                     KvCache& cache, const ForwardContext& ctx) {
  project_qkv(c, w, batch, n, out, ws, ctx);
  store_kv(c, layer, batch, n, ws, cache, ctx);
  switch (cache.dtype()) {
    case DType::F16:
      attend_all<uint16_t>(c, layer, batch, out, ws, cache, ctx);
      break;
    case DType::Q8_0:
      attend_all<quant::BlockQ8_0>(c, layer, batch, out, ws, cache, ctx);
      break;
    default:
      attend_all<float>(c, layer, batch, out, ws, cache, ctx);
  }
  if (out.m > 0) ctx.backend.matmul(w.wo, ws.att.data(), out.m, ws.proj.data(), ctx.pool);
}

}  // namespace smoe
