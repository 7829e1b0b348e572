// Lane helpers of the AVX-512 attention kernels (f32 rows in float_kernels_avx512.cpp, f16 and
// Q8_0 rows in kv_kernels_avx512.cpp). Header-only with internal linkage: include only from files
// built with AVX-512 enabled.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace smoe::cpu {
namespace {

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// The four lane sums of a[0..3] as one 128-bit vector.
inline __m128 reduce4(const __m512* a) {
  const __m512 a01 = _mm512_add_ps(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
  const __m512 a23 = _mm512_add_ps(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
  // Per 128-bit lane: [a0, a1, a2, a3] partial sums.
  const __m512 b =
      _mm512_add_ps(_mm512_shuffle_ps(a01, a23, 0x44), _mm512_shuffle_ps(a01, a23, 0xEE));
  const __m256 c = _mm256_add_ps(_mm512_castps512_ps256(b),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
}

}  // namespace
}  // namespace smoe::cpu
