// AVX2 + FMA + F16C dot products (this file is compiled with those flags only).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/attention_group.h"
#include "kernels/cpu/avx2/attention_lanes.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/simd_sum.h"
#include "kernels/ops.h"

namespace smoe::cpu {
namespace {

template <typename Load, typename Scalar>
float dot(const std::byte* w, const float* x, int64_t n, Load load, Scalar scalar) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(load(w, i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load(w, i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load(w, i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load(w, i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load(w, i), _mm256_loadu_ps(x + i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += scalar(w, i) * x[i];
  return s;
}

float dot_f32(const std::byte* w, const float* x, int64_t n) {
  return dot(
      w, x, n,
      [](const std::byte* p, int64_t i) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + i);
      },
      [](const std::byte* p, int64_t i) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        return f;
      });
}

float dot_f16(const std::byte* w, const float* x, int64_t n) {
  return dot(
      w, x, n,
      [](const std::byte* p, int64_t i) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
      },
      [](const std::byte* p, int64_t i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        return f16_to_f32(h);
      });
}

float dot_bf16(const std::byte* w, const float* x, int64_t n) {
  return dot(
      w, x, n,
      [](const std::byte* p, int64_t i) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      },
      [](const std::byte* p, int64_t i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        return bf16_to_f32(h);
      });
}

// kG heads (1 or 4) against every key: each 8 values of a key are loaded once for all heads.
template <int kG>
void scores_heads(const float* q, const float* const* keys, int64_t n, int64_t hd, float scale,
                  float* scores, int64_t s_stride) {
  for (int64_t j = 0; j < n; ++j) {
    __m256 acc[kG];
    for (int h = 0; h < kG; ++h) acc[h] = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) {
      const __m256 k = _mm256_loadu_ps(keys[j] + d);
      for (int h = 0; h < kG; ++h)
        acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * hd + d), k, acc[h]);
    }
    if (d < hd) {
      const __m256i m = tail_mask(hd - d);
      const __m256 k = _mm256_maskload_ps(keys[j] + d, m);
      for (int h = 0; h < kG; ++h)
        acc[h] = _mm256_fmadd_ps(_mm256_maskload_ps(q + h * hd + d, m), k, acc[h]);
    }
    if constexpr (kG == 4) {
      store_sums4(acc, scale, scores + j, s_stride);
    } else {
      scores[j] = scale * hsum(acc[0]);
    }
  }
}

// kG heads (1 or 4) × 16 output values held in registers over all n values.
template <int kG>
void wsum_heads(const float* p, int64_t p_stride, const float* const* vals, int64_t n, int64_t hd,
                float* out) {
  for (int64_t d0 = 0; d0 < hd; d0 += 16) {
    __m256i m[2];
    for (int c = 0; c < 2; ++c) m[c] = tail_mask(hd - d0 - 8 * c);
    __m256 acc[kG][2];
    for (int h = 0; h < kG; ++h) acc[h][0] = acc[h][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      __m256 v[2];
      for (int c = 0; c < 2; ++c) v[c] = _mm256_maskload_ps(vals[j] + d0 + 8 * c, m[c]);
      for (int h = 0; h < kG; ++h) {
        const __m256 w = _mm256_broadcast_ss(p + h * p_stride + j);
        for (int c = 0; c < 2; ++c) acc[h][c] = _mm256_fmadd_ps(w, v[c], acc[h][c]);
      }
    }
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 2; ++c) _mm256_maskstore_ps(out + h * hd + d0 + 8 * c, m[c], acc[h][c]);
  }
}

// e^v for every lane, v clamped to [−87, 88] so that 2^n stays a normal float (e^v then reads
// as about 1.6e-38 or 1.7e38 where expf gives 0 or +inf, which SiLU turns into the same result
// within float rounding): v = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial of
// degree 6 (relative error below 2e-7), 2^n built in the exponent bits.
inline __m256 exp256(__m256 v) {
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), v);  // ln2 in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void silu_mul(float* a, const float* b, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(a + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
  }
  ops::silu_mul(a + i, b + i, n - i);
}

// In place (ops::softmax): the maximum, e^(x − max) by exp256 summed in 8 lanes (the last
// n mod 8 values by expf), then one multiply by the sum's reciprocal.
void softmax(float* x, int64_t n) {
  const int64_t n8 = n - n % 8;
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n8; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float m = -INFINITY;
  for (float v : lanes) m = std::fmax(m, v);
  for (int64_t i = n8; i < n; ++i) m = std::fmax(m, x[i]);
  const __m256 vm = _mm256_set1_ps(m);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t i = 0; i < n8; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    vsum = _mm256_add_ps(vsum, e);
    _mm256_storeu_ps(x + i, e);
  }
  float sum = hsum(vsum);
  for (int64_t i = n8; i < n; ++i) sum += x[i] = std::exp(x[i] - m);
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (int64_t i = 0; i < n8; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (int64_t i = n8; i < n; ++i) x[i] *= 1.0f / sum;
}

}  // namespace

const FloatKernels& float_kernels_avx2() {
  static const FloatKernels k = [] {
    FloatKernels t{.isa = "avx2",
                   .dot_f32 = dot_f32,
                   .dot_f16 = dot_f16,
                   .dot_bf16 = dot_bf16,
                   .scores_group = kernels::scores_group_by_four<scores_heads<4>, scores_heads<1>>,
                   .wsum_group = kernels::wsum_group_by_four<wsum_heads<4>, wsum_heads<1>>,
                   .silu_mul = silu_mul,
                   .softmax = softmax};
    set_kv_kernels_avx2(t);
    return t;
  }();
  return k;
}

}  // namespace smoe::cpu
