// AVX2 integer dot products: unsigned×signed byte multiplies (maddubs) summed to int32.
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/simd_sum.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

// int32 lanes of Σ a·b for 32 signed bytes a (as |a| with b's sign moved over) and b.
__m256i dot_i8(__m256i a, __m256i b) {
  const __m256i ua = _mm256_sign_epi8(a, a), sb = _mm256_sign_epi8(b, a);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ua, sb), _mm256_set1_epi16(1));
}

float dot_q4_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ4_0*>(w);
  __m256 acc = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8);
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    // weights 0..15 from the low nibbles, 16..31 from the high ones, minus 8
    const __m256i nib = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    const __m256i wq = _mm256_sub_epi8(_mm256_and_si256(nib, low), eight);
    const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d) * x[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(wq, aq)), acc);
  }
  return hsum(acc);
}

float dot_q8_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ8_0*>(w);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d) * x[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(wq, aq)), acc);
  }
  return hsum(acc);
}

// Four activation rows share each unpacked weight block.
template <bool kQ4>
void dot4(const void* w, const ActQ8* x, int64_t stride, int64_t n, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  const __m256i low = _mm256_set1_epi8(0xF), eight = _mm256_set1_epi8(8);
  for (int64_t i = 0; i < n / 32; ++i) {
    __m256i wq;
    float dw;
    if constexpr (kQ4) {
      const auto& b = static_cast<const quant::BlockQ4_0*>(w)[i];
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
      wq = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low), eight);
      dw = _cvtsh_ss(b.d);
    } else {
      const auto& b = static_cast<const quant::BlockQ8_0*>(w)[i];
      wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
      dw = _cvtsh_ss(b.d);
    }
    const __m256i uw = _mm256_sign_epi8(wq, wq);
    for (int j = 0; j < 4; ++j) {
      const ActQ8& a = x[j * stride + i];
      const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(uw, _mm256_sign_epi8(aq, wq)),
                                          _mm256_set1_epi16(1));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a.d), _mm256_cvtepi32_ps(p), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) out[j] = hsum(acc[j]);
}

}  // namespace

const QuantKernels& quant_kernels_avx2() {
  static const QuantKernels k{"avx2", dot_q4_0, dot_q8_0, dot4<true>, dot4<false>};
  return k;
}

}  // namespace smoe::cpu
