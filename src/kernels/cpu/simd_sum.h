// Horizontal sums shared by the AVX2 and AVX-512 kernels. Include only from files built with
// AVX2 (or wider) enabled.
#pragma once

#include <immintrin.h>

namespace smoe::cpu {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace smoe::cpu
