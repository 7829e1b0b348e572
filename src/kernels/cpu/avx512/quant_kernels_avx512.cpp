// AVX-512 VNNI integer dot products (256-bit vpdpbusd): unsigned weight bytes × signed
// activation bytes accumulate straight into int32; offset-encoded weights (Q4_0 stores q + 8)
// are corrected with the activation block's sum.
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/cpu/quant_kernels.h"
#include "kernels/cpu/simd_sum.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

float dot_q4_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ4_0*>(w);
  __m256 acc = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0xF);
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m256i wu = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
    const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu, aq);
    // Σ (u − 8)·a = Σ u·a − 8·Σ a
    const __m256i fixed =
        _mm256_sub_epi32(dot, _mm256_setr_epi32(8 * x[i].sum, 0, 0, 0, 0, 0, 0, 0));
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[i].d) * x[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(fixed), acc);
  }
  return hsum(acc);
}

float dot_q8_0(const void* w, const ActQ8* x, int64_t n) {
  const auto* b = static_cast<const quant::BlockQ8_0*>(w);
  float s = 0;
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < n / 32; ++i) {
    // Signed weights made unsigned by +128; Σ (w+128)·a − 128·Σ a = Σ w·a.
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
    const __m256i wu = _mm256_xor_si256(wq, bias);
    const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const int32_t dot =
        hsum_i32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wu, aq)) - 128 * x[i].sum;
    s += _cvtsh_ss(b[i].d) * x[i].d * static_cast<float>(dot);
  }
  return s;
}

// Four activation rows share each unpacked weight block. Weights as unsigned bytes (Q4_0: q,
// Q8_0: q + 128), corrected with each activation block's sum.
template <bool kQ4>
void dot4(const void* w, const ActQ8* x, int64_t stride, int64_t n, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  const __m256i low = _mm256_set1_epi8(0xF), bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const int32_t offset = kQ4 ? 8 : 128;
  for (int64_t i = 0; i < n / 32; ++i) {
    __m256i wu;
    float dw;
    if constexpr (kQ4) {
      const auto& b = static_cast<const quant::BlockQ4_0*>(w)[i];
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
      wu = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
      dw = _cvtsh_ss(b.d);
    } else {
      const auto& b = static_cast<const quant::BlockQ8_0*>(w)[i];
      wu = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), bias);
      dw = _cvtsh_ss(b.d);
    }
    for (int j = 0; j < 4; ++j) {
      const ActQ8& a = x[j * stride + i];
      const __m256i aq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu, aq);
      p = _mm256_sub_epi32(p, _mm256_setr_epi32(offset * a.sum, 0, 0, 0, 0, 0, 0, 0));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a.d), _mm256_cvtepi32_ps(p), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) out[j] = hsum(acc[j]);
}

}  // namespace

const QuantKernels& quant_kernels_avx512() {
  static const QuantKernels k{"avx512", dot_q4_0, dot_q8_0, dot4<true>, dot4<false>};
  return k;
}

}  // namespace smoe::cpu
