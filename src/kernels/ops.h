// Element-wise and per-row operations of the transformer, in f32 (reference and fast enough:
// they are O(n·dim) against the matmuls' O(n·dim²)).
#pragma once

#include <cstdint>

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

}  // namespace smoe::ops
