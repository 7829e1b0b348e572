// Lane helpers of the AVX2 attention kernels (f32 rows in float_kernels_avx2.cpp, f16 and Q8_0
// rows in kv_kernels_avx2.cpp). Header-only with internal linkage: include only from files built
// with AVX2 enabled.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace smoe::cpu {
namespace {

// Lanes [0, left) of 8 as a load/store mask.
inline __m256i tail_mask(int64_t left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left < 8 ? left : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// scale · the lane sum of acc[h], for the four heads h, to scores[h·s_stride].
inline void store_sums4(const __m256* acc, float scale, float* scores, int64_t s_stride) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
  alignas(16) float s[4];
  _mm_store_ps(s, _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)),
                             _mm_set1_ps(scale)));
  for (int h = 0; h < 4; ++h) scores[h * s_stride] = s[h];
}

}  // namespace
}  // namespace smoe::cpu
