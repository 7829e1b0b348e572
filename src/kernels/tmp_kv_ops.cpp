#include "kernels/tmp_kv_ops.h"

#include "core/fp16.h"
#include "quant/quantize.h"
namespace smoe::tmpkv {
static float q8(const quant::BlockQ8_0* r, int64_t d) {
  return f16_to_f32(r[d / 32].d) * r[d / 32].qs[d % 32];
}
void scores_group_f16(const float* q, int g, const uint16_t* const* keys, int64_t n, int64_t hd,
                      float scale, float* scores, int64_t s_stride) {
  for (int h = 0; h < g; ++h)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int64_t d = 0; d < hd; ++d) s += q[h * hd + d] * f16_to_f32(keys[j][d]);
      scores[h * s_stride + j] = scale * s;
    }
}
void wsum_group_f16(const float* p, int64_t p_stride, int g, const uint16_t* const* vals, int64_t n,
                    int64_t hd, float* out) {
  for (int h = 0; h < g; ++h) {
    for (int64_t d = 0; d < hd; ++d) out[h * hd + d] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d)
        out[h * hd + d] += p[h * p_stride + j] * f16_to_f32(vals[j][d]);
  }
}
void scores_group_q8_0(const float* q, int g, const quant::BlockQ8_0* const* keys, int64_t n,
                       int64_t hd, float scale, float* scores, int64_t s_stride) {
  for (int h = 0; h < g; ++h)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int64_t d = 0; d < hd; ++d) s += q[h * hd + d] * q8(keys[j], d);
      scores[h * s_stride + j] = scale * s;
    }
}
void wsum_group_q8_0(const float* p, int64_t p_stride, int g, const quant::BlockQ8_0* const* vals,
                     int64_t n, int64_t hd, float* out) {
  for (int h = 0; h < g; ++h) {
    for (int64_t d = 0; d < hd; ++d) out[h * hd + d] = 0;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < hd; ++d) out[h * hd + d] += p[h * p_stride + j] * q8(vals[j], d);
  }
}
void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}
void to_q8_0(const float* x, quant::BlockQ8_0* y, int64_t n) {
  quant::quantize_row(DType::Q8_0, x, y, n);
}
}  // namespace smoe::tmpkv
