// Eight f16 values spread through memory as one vector of floats, for the AVX2 kernels' per-row
// and per-block scales (and the AVX-512 repack's). Header-only with internal linkage: include only
// from files built with AVX2 enabled.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace smoe::cpu {
namespace {

// The f16 at p + i·stride for i = 0 .. 7 as floats, inserted lane by lane (eight 2-byte stores
// read back as one vector would stall the load).
inline __m256 halves8(const std::byte* p, size_t stride) {
  const auto h = [&](size_t i) {
    uint16_t v;
    std::memcpy(&v, p + i * stride, 2);
    return static_cast<int>(v);
  };
  __m128i v = _mm_cvtsi32_si128(h(0));
  v = _mm_insert_epi16(v, h(1), 1);
  v = _mm_insert_epi16(v, h(2), 2);
  v = _mm_insert_epi16(v, h(3), 3);
  v = _mm_insert_epi16(v, h(4), 4);
  v = _mm_insert_epi16(v, h(5), 5);
  v = _mm_insert_epi16(v, h(6), 6);
  v = _mm_insert_epi16(v, h(7), 7);
  return _mm256_cvtph_ps(v);
}

}  // namespace
}  // namespace smoe::cpu
