// The scalar reference of the integer dot products (and the activation quantizer).
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/cpu/quant_kernels.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

float dot_q4_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ4_0*>(w);
  float s = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int32_t acc = 0;
    for (int j = 0; j < 16; ++j) {
      acc += ((b[i].qs[j] & 0xF) - 8) * x[i].qs[j];
      acc += ((b[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
    }
    s += f16_to_f32(b[i].d) * x[i].d * static_cast<float>(acc);
  }
  return s;
}

float dot_q8_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ8_0*>(w);
  float s = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    int32_t acc = 0;
    for (int j = 0; j < 32; ++j) acc += b[i].qs[j] * x[i].qs[j];
    s += f16_to_f32(b[i].d) * x[i].d * static_cast<float>(acc);
  }
  return s;
}

void dot4_q4_0(const void* w, const ActQ8* x, int64_t stride, int64_t n, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = dot_q4_0(w, x + j * stride, n);
}

void dot4_q8_0(const void* w, const ActQ8* x, int64_t stride, int64_t n, float* out) {
  for (int j = 0; j < 4; ++j) out[j] = dot_q8_0(w, x + j * stride, n);
}

}  // namespace

void quantize_act_q8(const float* x, ActQ8* out, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      out[i].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    out[i].d = d;
    out[i].sum = sum;
  }
}

const QuantKernels& quant_kernels_scalar() {
  static const QuantKernels k{"scalar", dot_q4_0, dot_q8_0, dot4_q4_0, dot4_q8_0};
  return k;
}

}  // namespace smoe::cpu
