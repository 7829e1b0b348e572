// Element-wise and per-row operations of the transformer, in f32 (reference and fast enough:
// they are O(n·dim) against the matmuls' O(n·dim²)).
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace smoe::ops {

// out = x / sqrt(mean(x²) + eps) * w, over n elements.
void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps);

// Rotates adjacent pairs (x[2i], x[2i+1]) of each head by pos·θ^(-2i/head_dim), in place.
// `inv_freq` holds θ^(-2i/head_dim) for i < head_dim/2.
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const float* inv_freq);

// In-place softmax of n values.
void softmax(float* x, int64_t n);

// a[i] = silu(a[i]) * b[i]
void silu_mul(float* a, const float* b, int64_t n);

float dot(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float* y, float a, const float* x, int64_t n);

// Attention for a group of g query heads that share one key/value head (grouped-query
// attention), hd values per head; q and out hold the g heads one after another.
// scores[h·s_stride + j] = scale · q_h · keys[j], for the n keys.
void scores_group(const float* q, int g, const float* const* keys, int64_t n, int64_t hd,
                  float scale, float* scores, int64_t s_stride);
// out[h·hd + d] = Σ_j p[h·p_stride + j] · vals[j][d], for the n values.
void wsum_group(const float* p, int64_t p_stride, int g, const float* const* vals, int64_t n,
                int64_t hd, float* out);

// The same over rows that the key/value cache stores in a smaller type: each row is read as the
// exact floats it stands for (f16_to_f32 of core/fp16.h; d·q for Q8_0, d its f16 scale) and the
// sums are those of scores_group / wsum_group on those floats, term for term in the same order.
// Rows are IEEE half bits, any hd, any alignment:
void scores_group_f16(const float* q, int g, const uint16_t* const* keys, int64_t n, int64_t hd,
                      float scale, float* scores, int64_t s_stride);
void wsum_group_f16(const float* p, int64_t p_stride, int g, const uint16_t* const* vals, int64_t n,
                    int64_t hd, float* out);
// Rows of hd / 32 Q8_0 blocks: hd must be a multiple of 32 (the kernels assume it).
void scores_group_q8_0(const float* q, int g, const quant::BlockQ8_0* const* keys, int64_t n,
                       int64_t hd, float scale, float* scores, int64_t s_stride);
void wsum_group_q8_0(const float* p, int64_t p_stride, int g, const quant::BlockQ8_0* const* vals,
                     int64_t n, int64_t hd, float* out);

// A key or value row as the cache stores it. f32 → f16: round to nearest even, overflow to inf,
// NaN to a quiet NaN of the same sign (f32_to_f16). f32 → Q8_0: the GGUF reference quantizer,
// quant::quantize_row (d = amax/127, q = x·(1/d) rounded half away from zero); n must be a
// multiple of 32 (this one throws smoe::Error otherwise, the SIMD ones skip a partial block).
void to_f16(const float* x, uint16_t* y, int64_t n);
void to_q8_0(const float* x, quant::BlockQ8_0* y, int64_t n);

}  // namespace smoe::ops
