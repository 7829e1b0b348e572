// AVX-512 (F, BW, VL) dot products (this file is compiled with those flags only).
#include <immintrin.h>

#include <cstring>

#include "core/fp16.h"
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

float dot_ff(const float* a, const float* b, int64_t n) {
  return dot_f32(reinterpret_cast<const std::byte*>(a), b, n);
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    _mm512_mask_storeu_ps(
        y + i, m,
        _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

}  // namespace

const FloatKernels& float_kernels_avx512() {
  static const FloatKernels k{"avx512", dot_f32, dot_f16, dot_bf16, dot_ff, axpy};
  return k;
}

}  // namespace smoe::cpu
