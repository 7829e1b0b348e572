// Attention over a group of query heads one head and key at a time, from a dot product and an
// axpy: the scalar reference (ops.cpp) instantiates it with its own, one pair per way the cache
// stores a row (`Row`: float, IEEE half bits, Q8_0 blocks). The AVX2 and AVX-512 kernels share
// each key and value load across four heads instead (the *_by_four splits).
#pragma once

#include <cstdint>

namespace smoe::kernels {

// See ops::scores_group. Dot(q, row, hd): Σ_d q[d]·row[d].
template <auto Dot, typename Row>
void scores_group_by_head(const float* q, int g, const Row* const* keys, int64_t n, int64_t hd,
                          float scale, float* scores, int64_t s_stride) {
  for (int h = 0; h < g; ++h)
    for (int64_t j = 0; j < n; ++j) scores[h * s_stride + j] = scale * Dot(q + h * hd, keys[j], hd);
}

// See ops::wsum_group. Axpy(o, a, row, hd): o[d] += a·row[d].
template <auto Axpy, typename Row>
void wsum_group_by_head(const float* p, int64_t p_stride, int g, const Row* const* vals, int64_t n,
                        int64_t hd, float* out) {
  for (int h = 0; h < g; ++h) {
    float* o = out + h * hd;
    for (int64_t d = 0; d < hd; ++d) o[d] = 0.0f;
    for (int64_t j = 0; j < n; ++j) Axpy(o, p[h * p_stride + j], vals[j], hd);
  }
}

// The query heads of a group four at a time through kernels that share each key (value) load
// across four heads, the rest one at a time: how the SIMD kernels split a group.
template <auto Scores4, auto Scores1, typename Row>
void scores_group_by_four(const float* q, int g, const Row* const* keys, int64_t n, int64_t hd,
                          float scale, float* scores, int64_t s_stride) {
  int h = 0;
  for (; h + 4 <= g; h += 4)
    Scores4(q + h * hd, keys, n, hd, scale, scores + h * s_stride, s_stride);
  for (; h < g; ++h) Scores1(q + h * hd, keys, n, hd, scale, scores + h * s_stride, s_stride);
}

template <auto Wsum4, auto Wsum1, typename Row>
void wsum_group_by_four(const float* p, int64_t p_stride, int g, const Row* const* vals, int64_t n,
                        int64_t hd, float* out) {
  int h = 0;
  for (; h + 4 <= g; h += 4) Wsum4(p + h * p_stride, p_stride, vals, n, hd, out + h * hd);
  for (; h < g; ++h) Wsum1(p + h * p_stride, p_stride, vals, n, hd, out + h * hd);
}

}  // namespace smoe::kernels
