#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"

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

// Best (scale, min) for x ≈ scale·L − min, L ∈ [0, nmax], weighted by w: tries a range of
// candidate scales and, for the levels each gives, solves the 2×2 least-squares problem.
// Returns the scale; *min_out ≥ 0 is subtracted.
float fit_scale_min(const float* x, const float* w, int n, int nmax, float* min_out) {
  float mn = x[0], mx = x[0], sw = 0, swx = 0;
  for (int i = 0; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sw += w[i];
    swx += w[i] * x[i];
  }
  mn = std::min(mn, 0.0f);
  if (mx <= mn) {
    *min_out = -mn;
    return 0.0f;
  }
  float best_scale = (mx - mn) / nmax, best_min = -mn, best_err = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest((x[i] - mn) / best_scale), 0, nmax);
    const float e = best_scale * l + mn - x[i];
    best_err += w[i] * e * e;
  }
  for (int step = 0; step <= 20; ++step) {
    const float iscale = (nmax + (-1.0f + 0.1f * step)) / (mx - mn);
    float sl = 0, sll = 0, sxl = 0;
    int L[32];
    for (int i = 0; i < n; ++i) {
      L[i] = std::clamp(nearest(iscale * (x[i] - mn)), 0, nmax);
      sl += w[i] * L[i];
      sll += w[i] * L[i] * L[i];
      sxl += w[i] * L[i] * x[i];
    }
    const float det = sw * sll - sl * sl;
    if (det <= 0) continue;
    float scale = (sw * sxl - swx * sl) / det, off = (sll * swx - sl * sxl) / det;
    if (off > 0) {  // the offset must not be positive: refit the scale with offset 0
      off = 0;
      scale = sll > 0 ? sxl / sll : 0;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = scale * L[i] + off - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_min = -off;
    }
  }
  *min_out = best_min;
  return best_scale;
}

// Importance of each weight in a sub-block: its magnitude plus the block's RMS.
void weights_of(const float* x, int n, float* w) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += x[i] * x[i];
  const float av = std::sqrt(s / n);
  for (int i = 0; i < n; ++i) w[i] = av + std::fabs(x[i]);
}

// Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins.
template <typename B>
void q_k4(const float* x, B* b, int64_t nb, int nmax) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      weights_of(x + 32 * j, 32, w);
      scales[j] = fit_scale_min(x + 32 * j, w, 32, nmax, &mins[j]);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float is = max_scale > 0 ? 63.0f / max_scale : 0, im = max_min > 0 ? 63.0f / max_min : 0;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(std::min(63, nearest(is * scales[j])));
      lm[j] = static_cast<uint8_t>(std::min(63, nearest(im * mins[j])));
    }
    std::memset(&b[i], 0, sizeof(B));
    for (int j = 0; j < 4; ++j) {
      b[i].scales[j] = static_cast<uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
      b[i].scales[j + 4] = static_cast<uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
      b[i].scales[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
    b[i].d = f32_to_f16(max_scale / 63.0f);
    b[i].dmin = f32_to_f16(max_min / 63.0f);
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    for (int j = 0; j < 8; ++j) {
      const float dl = d * ls[j], ml = dmin * lm[j];
      for (int l = 0; l < 32; ++l) {
        const int q = dl ? std::clamp(nearest((x[32 * j + l] + ml) / dl), 0, nmax) : 0;
        const int byte = 32 * (j / 2) + l;
        b[i].qs[byte] |= static_cast<uint8_t>((q & 0xF) << (4 * (j % 2)));
        if constexpr (sizeof(B) == sizeof(BlockQ5_K))
          b[i].qh[l] |= static_cast<uint8_t>(((q >> 4) & 1) << j);
      }
    }
  }
}

// Symmetric fit for Q6_K: x ≈ scale·L, L ∈ [-32, 31]; returns the scale.
float fit_scale_sym(const float* x, const float* w, int n) {
  float amax = 0, mx = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      mx = x[i];
    }
  if (amax == 0) return 0;
  float best = 0, best_err = INFINITY;
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(32 + 0.1f * step) / mx;
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest(iscale * x[i]), -32, 31);
      sxl += w[i] * x[i] * l;
      sll += w[i] * l * l;
    }
    const float scale = sll > 0 ? sxl / sll : 0;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = scale * std::clamp(nearest(iscale * x[i]), -32, 31) - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) {
      best_err = err;
      best = scale;
    }
  }
  return best;
}

void q6_k(const float* x, BlockQ6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16], w[16], amax = 0, mx = 0;
    for (int j = 0; j < 16; ++j) {
      weights_of(x + 16 * j, 16, w);
      scales[j] = fit_scale_sym(x + 16 * j, w, 16);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        mx = scales[j];
      }
    }
    std::memset(&b[i], 0, sizeof(BlockQ6_K));
    const float iscale = mx ? -128.0f / mx : 0;
    b[i].d = f32_to_f16(iscale ? 1.0f / iscale : 0);
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j)
      b[i].scales[j] = static_cast<int8_t>(std::min(127, nearest(iscale * scales[j])));
    for (int r = 0; r < 256; ++r) {
      const float dl = d * b[i].scales[r / 16];
      const int q = dl ? std::clamp(nearest(x[r] / dl), -32, 31) + 32 : 32;
      const int half = r / 128, k = r % 128;
      b[i].ql[64 * half + k % 64] |= static_cast<uint8_t>((q & 0xF) << (k < 64 ? 0 : 4));
      b[i].qh[32 * half + k % 32] |= static_cast<uint8_t>((q >> 4) << (2 * (k / 32)));
    }
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
    case DType::Q4_K:
      return q_k4(x, static_cast<BlockQ4_K*>(dst), nb, 15);
    case DType::Q5_K:
      return q_k4(x, static_cast<BlockQ5_K*>(dst), nb, 31);
    case DType::Q6_K:
      return q6_k(x, static_cast<BlockQ6_K*>(dst), nb);
    default:
      fail("smoe cannot write {} weights yet", dtype_name(t));
  }
}

}  // namespace smoe::quant
