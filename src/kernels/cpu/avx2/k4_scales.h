// Q4_K's 6-bit scale and min of sub-block j (0-7) for eight rows at once, as quant::k4_scale_min
// gives them for one row: a, b and c hold the 12 scale bytes 0-3, 4-7 and 8-11 of row r in dword
// lane r. Shared by the strip repack and the eight-row small-batch tiles. Header-only with
// internal linkage: include only from files built with AVX2.
#pragma once

#include <immintrin.h>

namespace smoe::cpu {
namespace {

struct K4ScaleMin {
  __m256i sc, mn;
};

inline K4ScaleMin k4_scale_min8(__m256i a, __m256i b, __m256i c, int j) {
  const __m256i m6 = _mm256_set1_epi32(63), m4 = _mm256_set1_epi32(0xF),
                m2 = _mm256_set1_epi32(0x30);
  if (j < 4)
    return {_mm256_and_si256(_mm256_srli_epi32(a, 8 * j), m6),
            _mm256_and_si256(_mm256_srli_epi32(b, 8 * j), m6)};
  const int sh = 8 * (j - 4);
  return {_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(c, sh), m4),
                          _mm256_and_si256(_mm256_srli_epi32(a, sh + 2), m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(c, sh + 4), m4),
                          _mm256_and_si256(_mm256_srli_epi32(b, sh + 2), m2))};
}

}  // namespace
}  // namespace smoe::cpu
