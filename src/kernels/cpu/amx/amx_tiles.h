// What the AMX kernels (gemv_amx.cpp, gemm_amx.cpp) share: the tile configuration, how weight
// blocks become tile bytes, and the memory the tile intrinsics touch. Only sources built with the
// AMX flags include it, each getting its own copy (unnamed namespace).
#pragma once

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/avx512/gemv_pairs.h"

namespace smoe::cpu {
namespace {

// LDTILECFG's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Loads a configuration of `count` tiles, tile t `rows[t]` rows of `colsb[t]` bytes.
inline void configure_tiles(int count, const uint8_t* rows, const uint16_t* colsb) {
  TileConfig c;
  for (int t = 0; t < count; ++t) {
    c.rows[t] = rows[t];
    c.colsb[t] = colsb[t];
  }
  _tile_loadconfig(&c);
}

// The A tiles hold the weights' integers: signed (Q4_0's u − 8, Q8_0's q) with signed
// products, or Q4_K's unsigned nibbles, whose offset term Σ mw·sum is subtracted in floats.
enum class Form { Signed, Mins };

// A pair of blocks of one row as 64 bytes laid out like gemv_pairs.h's. Nibbles are split by one
// GF(2) affine transform per register, its matrix per 64-bit lane picking the low or the high
// nibble; for Q4_0 it also sign-extends the nibble with its top bit flipped, which is u − 8.
template <class P>
struct Unpack;
template <>
struct Unpack<Q4_0Pair> {  // 128-bit lanes: block 0 low, high, block 1 low, high
  static constexpr int64_t kLow = 0x0102040808080808, kHigh = 0x1020408080808080;
  static constexpr int kFlip = 0xF8;  // bits 3-7: the nibble's top bit, flipped
  __m512i nibbles = _mm512_setr_epi64(kLow, kLow, kHigh, kHigh, kLow, kLow, kHigh, kHigh);
  __m512i operator()(const std::byte* p, int) const {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(Q4_0Pair::twice(p)),
                                         Q4_0Pair::twice(p + Q4_0Pair::kBytes), 1);
    return _mm512_gf2p8affine_epi64_epi8(q, nibbles, kFlip);
  }
};
template <>
struct Unpack<Q8_0Pair> {  // the two blocks' 32 int8 each
  __m512i operator()(const std::byte* p, int) const {
    const auto* a = reinterpret_cast<const __m256i*>(p + 2);
    const auto* b = reinterpret_cast<const __m256i*>(p + 2 + Q8_0Pair::kBytes);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(a)), _mm256_loadu_si256(b),
                              1);
  }
};
template <>
struct Unpack<Q4_KPair> {  // 256-bit halves: the 32 bytes' low nibbles, then their high ones
  static constexpr int64_t kLow = 0x0102040800000000, kHigh = 0x1020408000000000;
  __m512i nibbles = _mm512_setr_epi64(kLow, kLow, kLow, kLow, kHigh, kHigh, kHigh, kHigh);
  __m512i operator()(const std::byte* p, int) const {
    const __m512i q =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_gf2p8affine_epi64_epi8(q, nibbles, 0);
  }
};

// The compiler's tile intrinsics (asm statements) do not say what memory they touch: these tell
// it that a tile load reads the kBytes at p (so the stores that fill them come first) and that a
// tile store wrote those at p (so later loads read them again).
template <size_t kBytes>
inline void tile_will_read(const void* p) {
  asm volatile("" : : "m"(*static_cast<const std::array<std::byte, kBytes>*>(p)));
}
template <size_t kBytes>
inline void tile_wrote(void* p) {
  asm volatile("" : "+m"(*static_cast<std::array<std::byte, kBytes>*>(p)));
}

// One tile product C = A·B in two parts: issue (A the weights, 16 rows `ws` bytes apart; B the
// activations, rows `xs` apart) and, some blocks later, store (C's 16 rows × 16 int32 to c), so
// that the store does not wait on the product just issued. The kernels use tiles 0 and 1 for C,
// 2 and 3 for A, 4 and 5 for B; kOdd picks the second of each (the intrinsics take tile numbers
// as literals), so that a product need not wait for the last one's sums to be stored.
template <Form kForm, bool kOdd>
inline void tile_issue(const int8_t* w, long ws, const int8_t* x, long xs) {
#define SMOE_TILE_PRODUCT(c, a, b)     \
  _tile_loadd(a, w, ws);               \
  _tile_loadd(b, x, xs);               \
  _tile_zero(c);                       \
  if constexpr (kForm == Form::Signed) \
    _tile_dpbssd(c, a, b);             \
  else                                 \
    _tile_dpbusd(c, a, b)
  if constexpr (!kOdd) {
    SMOE_TILE_PRODUCT(0, 2, 4);
  } else {
    SMOE_TILE_PRODUCT(1, 3, 5);
  }
#undef SMOE_TILE_PRODUCT
}
template <bool kOdd>
inline void tile_store(int32_t* c) {
  if constexpr (!kOdd)
    _tile_stored(0, c, 64);
  else
    _tile_stored(1, c, 64);
  tile_wrote<1024>(c);
}
// Block (or pair) i's product and store, in the tiles of its parity.
template <Form kForm>
inline void tile_issue(int64_t i, const int8_t* w, long ws, const int8_t* x, long xs) {
  i % 2 ? tile_issue<kForm, true>(w, ws, x, xs) : tile_issue<kForm, false>(w, ws, x, xs);
}
inline void tile_store(int64_t i, int32_t* c) {
  i % 2 ? tile_store<true>(c) : tile_store<false>(c);
}

}  // namespace
}  // namespace smoe::cpu
