#include "kernels/ops.h"

#include <cmath>

#include "core/fp16.h"
#include "kernels/attention_group.h"
#include "quant/quantize.h"

namespace smoe::ops {
namespace {

using quant::BlockQ8_0;
using quant::kQK;

// Element d of a row of Q8_0 blocks, as dequantize_row gives it.
float q8_0_at(const BlockQ8_0* row, int64_t d) {
  return f16_to_f32(row[d / kQK].d) * row[d / kQK].qs[d % kQK];
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * f16_to_f32(b[i]);
  return s;
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}

float dot_q8_0(const float* a, const BlockQ8_0* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * q8_0_at(b, i);
  return s;
}

void axpy_q8_0(float* y, float a, const BlockQ8_0* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * q8_0_at(x, i);
}

}  // namespace

void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t pos, const float* inv_freq) {
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i];
    const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
    for (int64_t h = 0; h < n_heads; ++h) {
      float* p = x + h * head_dim + 2 * i;
      const float a = p[0], b = p[1];
      p[0] = a * c - b * s;
      p[1] = a * s + b * c;
    }
  }
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scores_group(const float* q, int g, const float* const* keys, int64_t n, int64_t hd,
                  float scale, float* scores, int64_t s_stride) {
  kernels::scores_group_by_head<dot>(q, g, keys, n, hd, scale, scores, s_stride);
}

void wsum_group(const float* p, int64_t p_stride, int g, const float* const* vals, int64_t n,
                int64_t hd, float* out) {
  kernels::wsum_group_by_head<axpy>(p, p_stride, g, vals, n, hd, out);
}

void scores_group_f16(const float* q, int g, const uint16_t* const* keys, int64_t n, int64_t hd,
                      float scale, float* scores, int64_t s_stride) {
  kernels::scores_group_by_head<dot_f16>(q, g, keys, n, hd, scale, scores, s_stride);
}

void wsum_group_f16(const float* p, int64_t p_stride, int g, const uint16_t* const* vals, int64_t n,
                    int64_t hd, float* out) {
  kernels::wsum_group_by_head<axpy_f16>(p, p_stride, g, vals, n, hd, out);
}

void scores_group_q8_0(const float* q, int g, const BlockQ8_0* const* keys, int64_t n, int64_t hd,
                       float scale, float* scores, int64_t s_stride) {
  kernels::scores_group_by_head<dot_q8_0>(q, g, keys, n, hd, scale, scores, s_stride);
}

void wsum_group_q8_0(const float* p, int64_t p_stride, int g, const BlockQ8_0* const* vals,
                     int64_t n, int64_t hd, float* out) {
  kernels::wsum_group_by_head<axpy_q8_0>(p, p_stride, g, vals, n, hd, out);
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void to_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  quant::quantize_row(DType::Q8_0, x, y, n);
}

}  // namespace smoe::ops
