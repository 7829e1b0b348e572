#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quantize_k.h"

namespace smoe::quant {
namespace {

int nearest(float x) {
  return static_cast<int>(std::lround(x));
}

void q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(nearest(x[j] * id));
  }
}

// Q4_0 / Q5_0: symmetric, the value of largest magnitude maps to the most negative level.
template <typename B>
void q_sym(const float* x, B* b, int64_t nb, int levels) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0, mx = 0;
    for (int j = 0; j < kQK; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        mx = x[j];
      }
    const float d = mx / -static_cast<float>(levels / 2), id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(levels - 1, static_cast<int>(x[j] * id + levels / 2 + 0.5f));
      const int q1 = std::min(levels - 1, static_cast<int>(x[j + 16] * id + levels / 2 + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    if constexpr (sizeof(B) == sizeof(BlockQ5_0)) std::memcpy(b[i].qh, &qh, 4);
  }
}

// Q4_1 / Q5_1: min-max.
template <typename B>
void q_minmax(const float* x, B* b, int64_t nb, int levels) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float mn = x[0], mx = x[0];
    for (int j = 1; j < kQK; ++j) {
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const float d = (mx - mn) / static_cast<float>(levels - 1), id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    b[i].m = f32_to_f16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(levels - 1, static_cast<int>((x[j] - mn) * id + 0.5f));
      const int q1 = std::min(levels - 1, static_cast<int>((x[j + 16] - mn) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    if constexpr (sizeof(B) == sizeof(BlockQ5_1)) std::memcpy(b[i].qh, &qh, 4);
  }
}

}  // namespace

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  const int64_t bs = dtype_info(t).block_size;
  if (n % bs != 0) fail("{} rows must be whole blocks of {} values; got {}", dtype_name(t), bs, n);
  const int64_t nb = n / bs;
  switch (t) {
    case DType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
    case DType::BF16: {
      auto* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    }
    case DType::Q8_0:
      return q8_0(x, static_cast<BlockQ8_0*>(dst), nb);
    case DType::Q4_0:
      return q_sym(x, static_cast<BlockQ4_0*>(dst), nb, 16);
    case DType::Q5_0:
      return q_sym(x, static_cast<BlockQ5_0*>(dst), nb, 32);
    case DType::Q4_1:
      return q_minmax(x, static_cast<BlockQ4_1*>(dst), nb, 16);
    case DType::Q5_1:
      return q_minmax(x, static_cast<BlockQ5_1*>(dst), nb, 32);
    case DType::Q2_K:
      return quantize_q2_k(x, static_cast<BlockQ2_K*>(dst), nb);
    case DType::Q3_K:
      return quantize_q3_k(x, static_cast<BlockQ3_K*>(dst), nb);
    case DType::Q4_K:
      return quantize_q4_k(x, static_cast<BlockQ4_K*>(dst), nb);
    case DType::Q5_K:
      return quantize_q5_k(x, static_cast<BlockQ5_K*>(dst), nb);
    case DType::Q6_K:
      return quantize_q6_k(x, static_cast<BlockQ6_K*>(dst), nb);
    default:
      fail("smoe cannot write {} weights yet", dtype_name(t));
  }
}

}  // namespace smoe::quant
