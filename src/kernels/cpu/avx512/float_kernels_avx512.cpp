// AVX-512 (F, BW, VL) dot products (this file is compiled with those flags only).
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/attention_group.h"
#include "kernels/cpu/avx512/attention_lanes.h"
#include "kernels/cpu/float_kernels.h"

namespace smoe::cpu {
namespace {

template <typename Load>
float dot(const std::byte* w, const float* x, int64_t n, Load load) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(load(w, i, 0xffff), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(load(w, i + 16, 0xffff), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(load(w, i + 32, 0xffff), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(load(w, i + 48, 0xffff), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i < n; i += 16) {  // masked tail: no scalar loop
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    a0 = _mm512_fmadd_ps(load(w, i, m), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float dot_f32(const std::byte* w, const float* x, int64_t n) {
  return dot(w, x, n, [](const std::byte* p, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(p) + i);
  });
}

float dot_f16(const std::byte* w, const float* x, int64_t n) {
  return dot(w, x, n, [](const std::byte* p, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + 2 * i));
  });
}

float dot_bf16(const std::byte* w, const float* x, int64_t n) {
  return dot(w, x, n, [](const std::byte* p, int64_t i, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p + 2 * i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  });
}

// kG heads (1 or 4) against every key: each 16 values of a key are loaded once for all heads.
template <int kG>
void scores_heads(const float* q, const float* const* keys, int64_t n, int64_t hd, float scale,
                  float* scores, int64_t s_stride) {
  for (int64_t j = 0; j < n; ++j) {
    __m512 acc[4];
    for (int h = 0; h < kG; ++h) acc[h] = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d += 16) {
      const __mmask16 m = tail_mask(hd - d);
      const __m512 k = _mm512_maskz_loadu_ps(m, keys[j] + d);
      for (int h = 0; h < kG; ++h)
        acc[h] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + h * hd + d), k, acc[h]);
    }
    if constexpr (kG == 4) {
      alignas(16) float s[4];
      _mm_store_ps(s, _mm_mul_ps(reduce4(acc), _mm_set1_ps(scale)));
      for (int h = 0; h < 4; ++h) scores[h * s_stride + j] = s[h];
    } else {
      scores[j] = scale * _mm512_reduce_add_ps(acc[0]);
    }
  }
}

// kG heads (1 or 4) × 64 output values held in registers over all n values.
template <int kG>
void wsum_heads(const float* p, int64_t p_stride, const float* const* vals, int64_t n, int64_t hd,
                float* out) {
  for (int64_t d0 = 0; d0 < hd; d0 += 64) {
    __mmask16 m[4];
    for (int c = 0; c < 4; ++c) m[c] = d0 + 16 * c < hd ? tail_mask(hd - d0 - 16 * c) : 0;
    __m512 acc[kG][4];
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 4; ++c) acc[h][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      __m512 v[4];
      for (int c = 0; c < 4; ++c) v[c] = _mm512_maskz_loadu_ps(m[c], vals[j] + d0 + 16 * c);
      for (int h = 0; h < kG; ++h) {
        const __m512 w = _mm512_set1_ps(p[h * p_stride + j]);
        for (int c = 0; c < 4; ++c) acc[h][c] = _mm512_fmadd_ps(w, v[c], acc[h][c]);
      }
    }
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 4; ++c)
        _mm512_mask_storeu_ps(out + h * hd + d0 + 16 * c, m[c], acc[h][c]);
  }
}

// e^v for every lane: v = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial of degree 6
// (relative error below 2e-7), times 2^n by vscalefps, which also gives +inf and 0 where e^v
// overflows or underflows, as expf does.
inline __m512 exp512(__m512 v) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), v);  // ln2 in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

void silu_mul(float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(a + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, b + i)));
  }
}

// In place (ops::softmax): the maximum, e^(x − max) by exp512 summed in 16 lanes, then one
// multiply by the sum's reciprocal.
void softmax(float* x, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16)
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail_mask(n - i), x + i));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
    sum = _mm512_mask_add_ps(sum, k, sum, e);
    _mm512_mask_storeu_ps(x + i, k, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
  }
}

}  // namespace

const FloatKernels& float_kernels_avx512() {
  static const FloatKernels k = [] {
    FloatKernels t{.isa = "avx512",
                   .dot_f32 = dot_f32,
                   .dot_f16 = dot_f16,
                   .dot_bf16 = dot_bf16,
                   .scores_group = kernels::scores_group_by_four<scores_heads<4>, scores_heads<1>>,
                   .wsum_group = kernels::wsum_group_by_four<wsum_heads<4>, wsum_heads<1>>,
                   .silu_mul = silu_mul,
                   .softmax = softmax};
    set_kv_kernels_avx512(t);
    return t;
  }();
  return k;
}

}  // namespace smoe::cpu
