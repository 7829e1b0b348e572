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

}  // namespace smoe::ops
