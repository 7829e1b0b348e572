// Reference quantizers of the k-quants, after the approach of the GGUF reference implementation
// (without importance weights; Q3_K and Q6_K with another error weighting, see fit_scale_sym): each
// sub-block's scale (and min) is searched over a range of
// candidate scales for the least weighted error, the sub-block scales are then quantized under
// one f16 super-block scale, and every weight is finally rounded with its quantized scale.
#include "quant/quantize_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"

namespace smoe::quant {
namespace {

constexpr float kTiny = 1e-15f;  // a group whose largest |x| is below this is all zeros

int round_even(float v) {
  return static_cast<int>(std::nearbyint(v));
}

// x ≈ scale·L − min with L ∈ [0, nmax] and min ≥ 0, minimising Σ w·|err| (mad) or Σ w·err².
// Starts from the min-max fit, then tries nstep + 1 scales (nmax + rmin + k·rdelta) / range, the
// range starting at the best offset so far, and solves the weighted least-squares (scale, min)
// for the levels each one gives.
struct MinFit {
  float rmin, rdelta;
  int nstep;
  bool mad;
};

float fit_scale_min(const float* x, const float* w, int n, int nmax, MinFit p, float* min_out) {
  float lo = x[0], hi = x[0], sw = 0, swx = 0;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sw += w[i];
    swx += w[i] * x[i];
  }
  lo = std::min(lo, 0.0f);
  if (hi == lo) {
    *min_out = -lo;
    return 0.0f;
  }
  auto error = [&](float scale, float off, const int* L) {
    float e = 0;
    for (int i = 0; i < n; ++i) {
      const float d = scale * L[i] + off - x[i];
      e += w[i] * (p.mad ? std::fabs(d) : d * d);
    }
    return e;
  };
  int L[32];
  float scale = (hi - lo) / nmax, off = lo;
  for (int i = 0; i < n; ++i) L[i] = std::clamp(round_even((x[i] - lo) / scale), 0, nmax);
  float best = error(scale, off, L);
  for (int k = 0; k <= p.nstep; ++k) {
    const float is = (p.rmin + p.rdelta * k + nmax) / (hi - off);
    float sl = 0, sll = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      L[i] = std::clamp(round_even(is * (x[i] - off)), 0, nmax);
      sl += w[i] * L[i];
      sll += w[i] * L[i] * L[i];
      sxl += w[i] * L[i] * x[i];
    }
    const float det = sw * sll - sl * sl;
    if (det <= 0) continue;
    float s = (sw * sxl - swx * sl) / det, o = (sll * swx - sl * sxl) / det;
    if (o > 0) {  // the offset is a subtracted min ≥ 0: refit the scale with none
      o = 0;
      s = sxl / sll;
    }
    const float e = error(s, o, L);
    if (e < best) {
      best = e;
      scale = s;
      off = o;
    }
  }
  *min_out = -off;
  return scale;
}

// Q3_K's and Q6_K's sub-block fit: x ≈ scale·l with l ∈ [−nmax, nmax − 1]. Of 19 candidate scales
// around −nmax / (the signed largest x), the central one first, keeps the least-squares scale of
// the levels with the least error weighted by w = rms(x) + |x|. (The GGUF reference weights by x²
// and maximises (Σ w·x·l)² / Σ w·l², refining Q3_K's levels one by one; this choice measured
// 2% (Q6_K) and 3-4% (Q3_K) lower RMSE on Gaussian and Student-t weights, and Q6_K logits 2.5×
// closer to f32 on the golden tiny models.)
float fit_scale_sym(const float* x, int n, int nmax) {
  float amax = 0, mx = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    s2 += x[i] * x[i];
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      mx = x[i];
    }
  }
  if (amax < kTiny) return 0;
  float w[16];
  const float av = std::sqrt(s2 / n);
  for (int i = 0; i < n; ++i) w[i] = av + std::fabs(x[i]);
  float best_scale = 0, best_err = INFINITY;
  for (int step = 0; step < 19; ++step) {  // k = 0 first, then −9..9
    const int k = step == 0 ? 0 : step <= 9 ? step - 10 : step - 9;
    const float is = -(nmax + 0.1f * k) / mx;
    int L[16];
    float sxl = 0, sll = 0;
    for (int i = 0; i < n; ++i) {
      L[i] = std::clamp(round_even(is * x[i]), -nmax, nmax - 1);
      sxl += w[i] * x[i] * L[i];
      sll += w[i] * L[i] * L[i];
    }
    if (sll <= 0) continue;
    const float scale = sxl / sll;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = scale * L[i] - x[i];
      err += w[i] * e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
    }
  }
  return best_scale;
}

// Packs 2-bit levels L[256] as Q2_K / Q3_K store them: weight 128h + 32s + l → bits 2s of
// qs[32h + l].
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* p = L + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(p[0] | (p[32] << 2) | (p[64] << 4) | (p[96] << 6));
    }
}

}  // namespace

void quantize_q2_k(const float* x, BlockQ2_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16], mins[16], w[16], max_scale = 0, max_min = 0;
    for (int g = 0; g < 16; ++g) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * g + l]);
      scales[g] = fit_scale_min(x + 16 * g, w, 16, 3, {-0.5f, 0.1f, 15, true}, &mins[g]);
      max_scale = std::max(max_scale, scales[g]);
      max_min = std::max(max_min, mins[g]);
    }
    std::memset(&b[i], 0, sizeof(BlockQ2_K));
    const float is = max_scale > 0 ? 15.0f / max_scale : 0, im = max_min > 0 ? 15.0f / max_min : 0;
    for (int g = 0; g < 16; ++g)
      b[i].scales[g] = static_cast<uint8_t>(std::clamp(round_even(is * scales[g]), 0, 15) |
                                            (std::clamp(round_even(im * mins[g]), 0, 15) << 4));
    b[i].d = f32_to_f16(max_scale / 15.0f);
    b[i].dmin = f32_to_f16(max_min / 15.0f);
    uint8_t L[kQKK] = {};
    for (int g = 0; g < 16; ++g) {
      const float d = f16_to_f32(b[i].d) * (b[i].scales[g] & 0xF);
      const float dm = f16_to_f32(b[i].dmin) * (b[i].scales[g] >> 4);
      if (d == 0) continue;
      for (int l = 0; l < 16; ++l)
        L[16 * g + l] =
            static_cast<uint8_t>(std::clamp(round_even((x[16 * g + l] + dm) / d), 0, 3));
    }
    pack_2bit(L, b[i].qs);
  }
}

void quantize_q3_k(const float* x, BlockQ3_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16], amax = 0, mx = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_scale_sym(x + 16 * g, 16, 4);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        mx = scales[g];
      }
    }
    std::memset(&b[i], 0, sizeof(BlockQ3_K));
    if (mx == 0) continue;
    const float is = -32.0f / mx;
    int sc[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = std::clamp(round_even(is * scales[g]), -32, 31);
      const int v = sc[g] + 32;  // 6 bits: low 4 in nibbles of scales[0..7], top 2 in [8..11]
      b[i].scales[g % 8] |= static_cast<uint8_t>((v & 0xF) << (g < 8 ? 0 : 4));
      b[i].scales[8 + g % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (g / 4)));
    }
    b[i].d = f32_to_f16(1.0f / is);
    uint8_t L[kQKK];
    for (int g = 0; g < 16; ++g) {
      const float d = f16_to_f32(b[i].d) * sc[g];
      for (int l = 0; l < 16; ++l) {
        const int q = d != 0 ? std::clamp(round_even(x[16 * g + l] / d), -4, 3) + 4 : 4;
        const int e = 16 * g + l;
        if (q > 3) b[i].hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        L[e] = static_cast<uint8_t>(q & 3);
      }
    }
    pack_2bit(L, b[i].qs);
  }
}

template <typename B>
void quantize_k4(const float* x, B* b, int64_t nb, int nmax, MinFit fit) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float s2 = 0;
      for (int l = 0; l < 32; ++l) s2 += x[32 * j + l] * x[32 * j + l];
      const float av = std::sqrt(s2 / 32);
      for (int l = 0; l < 32; ++l) w[l] = av + std::fabs(x[32 * j + l]);
      scales[j] = fit_scale_min(x + 32 * j, w, 32, nmax, fit, &mins[j]);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float is = max_scale > 0 ? 63.0f / max_scale : 0, im = max_min > 0 ? 63.0f / max_min : 0;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = static_cast<uint8_t>(std::clamp(round_even(is * scales[j]), 0, 63));
      lm[j] = static_cast<uint8_t>(std::clamp(round_even(im * mins[j]), 0, 63));
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
        const int q = dl != 0 ? std::clamp(round_even((x[32 * j + l] + ml) / dl), 0, nmax) : 0;
        b[i].qs[32 * (j / 2) + l] |= static_cast<uint8_t>((q & 0xF) << (4 * (j % 2)));
        if constexpr (sizeof(B) == sizeof(BlockQ5_K))
          b[i].qh[l] |= static_cast<uint8_t>(((q >> 4) & 1) << j);
      }
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* b, int64_t nb) {
  quantize_k4(x, b, nb, 15, {-1.0f, 0.1f, 20, false});
}

void quantize_q5_k(const float* x, BlockQ5_K* b, int64_t nb) {
  quantize_k4(x, b, nb, 31, {-0.5f, 0.1f, 15, false});
}

void quantize_q6_k(const float* x, BlockQ6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scales[16], amax = 0, mx = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_scale_sym(x + 16 * g, 16, 32);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        mx = scales[g];
      }
    }
    std::memset(&b[i], 0, sizeof(BlockQ6_K));
    if (amax < kTiny) continue;
    const float is = -128.0f / mx;
    b[i].d = f32_to_f16(1.0f / is);
    for (int g = 0; g < 16; ++g)
      b[i].scales[g] = static_cast<int8_t>(std::clamp(round_even(is * scales[g]), -128, 127));
    const float d = f16_to_f32(b[i].d);
    for (int e = 0; e < kQKK; ++e) {
      const float dl = d * b[i].scales[e / 16];
      const int q = dl != 0 ? std::clamp(round_even(x[e] / dl), -32, 31) + 32 : 32;
      const int h = e / 128, c = (e % 128) / 32, l = e % 32;
      b[i].ql[64 * h + 32 * (c % 2) + l] |= static_cast<uint8_t>((q & 0xF) << (c < 2 ? 0 : 4));
      b[i].qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * c));
    }
  }
}

}  // namespace smoe::quant
