// How the AVX-512 small-batch kernels read each weight type (see gemv.h): a step covers 16 blocks
// (512 columns) of a row, whose 16 scales come into one register (StepScales), and each pair of
// blocks is unpacked once into 64 unsigned bytes laid out like the 64 activation bytes of the same
// columns. Shared by the VNNI kernels (gemv_avx512.cpp) and the AMX tiles (amx/gemv_amx.cpp); only
// sources built with AVX-512 flags include it, each getting its own copy (unnamed namespace).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/gemv.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

// A step's 16 block scales dw (lanes = blocks) and the coefficients mw of the activation sums
// in the offset term, Σ_b mw_b·sum_b (mw = dw for the types whose constant c is applied at the
// end).
struct StepScales {
  __m512 dw, mw;
};

// The f16 scales (first 2 bytes) of 16 consecutive blocks of kBytes bytes, without a gather
// (slow on some cores): the 16·kBytes bytes are read in 128-byte chunks, two 64-byte loads each,
// and one two-source word permute per chunk moves the scales it holds to their lanes. A load
// that would pass the last block is moved back to end there.
template <int kBytes>
struct BlockScales {
  static constexpr int kTotal = 16 * kBytes, kChunks = (kTotal + 127) / 128;
  static_assert(kBytes % 2 == 0 && kTotal >= 64);
  static constexpr int lo_at(int c) { return std::min(128 * c, kTotal - 64); }
  static constexpr int hi_at(int c) { return std::min(128 * c + 64, kTotal - 64); }
  // Per chunk: the word each block's scale is taken from (of lo, or 32 + of hi), and a mask of
  // the blocks whose scale lies in it. Fixed by kBytes, so computed at compile time.
  struct Chunk {
    alignas(64) std::array<int16_t, 32> idx{};
    __mmask32 lanes = 0;
  };
  static constexpr std::array<Chunk, kChunks> chunks() {
    std::array<Chunk, kChunks> out{};
    for (int i = 0; i < 16; ++i) {
      const int at = kBytes * i, c = at / 128;  // byte offset of block i's scale; its chunk
      Chunk& ch = out[static_cast<size_t>(c)];
      ch.lanes |= 1u << i;
      ch.idx[static_cast<size_t>(i)] = static_cast<int16_t>(
          at + 2 <= lo_at(c) + 64 ? (at - lo_at(c)) / 2 : 32 + (at - hi_at(c)) / 2);
    }
    return out;
  }
  static constexpr std::array<Chunk, kChunks> kTable = chunks();
  static constexpr int kStep = kTotal;  // bytes of a 16-block step
  static constexpr bool kMins = false;
  static constexpr int pair_at(int p) { return 2 * p * kBytes; }
  static constexpr bool kSubScales = false;
  StepScales scales(const std::byte* base) const {
    __m512i h = _mm512_setzero_si512();
    for (int c = 0; c < kChunks; ++c) {
      const __m512i lo = _mm512_loadu_si512(base + lo_at(c)),
                    hi = _mm512_loadu_si512(base + hi_at(c));
      const Chunk& ch = kTable[static_cast<size_t>(c)];
      h = _mm512_mask_mov_epi16(
          h, ch.lanes, _mm512_permutex2var_epi16(lo, _mm512_load_si512(ch.idx.data()), hi));
    }
    const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    return {dw, dw};
  }
};

// Q4_0 (18-byte blocks: f16 d, 16 bytes of nibbles): the low nibbles of a block are its columns
// 0-15 and the high nibbles columns 16-31.
struct Q4_0Pair : BlockScales<18> {
  static constexpr int kBytes = 18, kC = 8;
  __m512i low4 = _mm512_set1_epi8(0xF);
  // A block's 16 bytes in both 128-bit lanes of a 256-bit register (one broadcast load).
  static __m256i twice(const std::byte* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
  }
  // Lanes: block i's low nibbles, its high nibbles, then block i + 1's. The mask picks the 16-bit
  // elements of lanes 1 and 3 for the shift by 4.
  __m512i load(const std::byte* p, int) const {  // blocks at p and p + 18
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(twice(p)), twice(p + kBytes), 1);
    return _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xFF00FF00u, q, 4), low4);
  }
};

// Q8_0 (34-byte blocks: f16 d, 32 int8): q + 128 as unsigned bytes.
struct Q8_0Pair : BlockScales<34> {
  static constexpr int kBytes = 34, kC = 128;
  __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i load(const std::byte* p, int) const {
    const auto* a = reinterpret_cast<const __m256i*>(p + 2);
    const auto* b = reinterpret_cast<const __m256i*>(p + 36);
    return _mm512_xor_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(a)), _mm256_loadu_si256(b), 1),
        bias);
  }
};

// Q4_K (144-byte super-blocks of 256 columns: f16 d and dmin, 12 bytes of 6-bit sub-block scales
// sc and mins m, 128 bytes of nibbles): w = d·sc_b·u − dmin·m_b for sub-block b of 32 columns.
// Byte i of the 32 at 32c holds columns 64c + i (low nibble, sub-block 2c) and 64c + 32 + i
// (high nibble, 2c + 1). A step is two super-blocks.
struct Q4_KPair {
  static constexpr int kStep = 2 * 144, kC = 1;
  static constexpr bool kMins = true;
  static constexpr int pair_at(int p) { return 144 * (p / 4) + 16 + 32 * (p % 4); }
  static constexpr bool kSubScales = false;
  __m512i low4 = _mm512_set1_epi8(0xF);
  __m512i load(const std::byte* p, int) const {  // sub-blocks 2c, 2c + 1 from their 32 bytes at p
    const __m512i q =
        _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xFFFF0000u, q, 4), low4);
  }
  // The 8 scales (low 8 bytes) and 8 mins (high 8 bytes) of the super-block at p, as bytes.
  static __m128i scales_mins(const std::byte* p) {
    uint32_t sm[4];
    quant::k4_scales_mins(reinterpret_cast<const uint8_t*>(p + 4), sm);
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
  }
  StepScales scales(const std::byte* base) const {
    const __m128i a = scales_mins(base), b = scales_mins(base + 144);
    const auto as_f = [](__m128i bytes) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)); };
    uint32_t h[2];  // d and dmin of each super-block
    std::memcpy(&h[0], base, 4);
    std::memcpy(&h[1], base + 144, 4);
    const __m512 dd = _mm512_castps128_ps512(
        _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(h[0] | uint64_t{h[1]} << 32))));
    const __m512i lanes_d = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i lanes_m = _mm512_add_epi32(lanes_d, _mm512_set1_epi32(1));
    return {_mm512_mul_ps(as_f(_mm_unpacklo_epi64(a, b)), _mm512_permutexvar_ps(lanes_d, dd)),
            _mm512_mul_ps(as_f(_mm_unpackhi_epi64(a, b)), _mm512_permutexvar_ps(lanes_m, dd))};
  }
};

// Q6_K (210-byte super-blocks of 256 columns: 128 bytes ql of low 4 bits, 64 bytes qh of high 2
// bits, 16 int8 scales sc of 16 columns each, f16 d): w = d·sc_s·(u − 32). In half h (128
// columns) byte l of ql[64h ..] and qh[32h + l % 32] hold columns l (l < 32: low nibble, qh bits
// 0-1; 32 ≤ l: low nibble, bits 2-3), and the high nibbles columns 64 + l with bits 4-5 and 6-7.
// So pair p' = 2h + k of a super-block is ql[64h ..] (k = 0 low nibbles, 1 high) and qh[32h ..]
// twice, its two halves shifted apart. A step is two super-blocks; the scales change every 4
// lanes of a dot, so each pair has its own weight-scale register (lane_scales), and the dots start
// from −32·sum4 (see gemv.h) instead of an offset term.
struct Q6_KPair {
  static constexpr int kStep = 2 * 210, kC = 0;
  static constexpr bool kMins = false, kSubScales = true;
  static constexpr int pair_at(int p) { return 210 * (p / 4) + 64 * (p % 4 / 2); }
  __m512i low4 = _mm512_set1_epi8(0xF), high2 = _mm512_set1_epi8(0x30);
  __m512i load(const std::byte* p, int pair) const {  // p: ql of the pair's half
    const __m512i ql = _mm512_loadu_si512(p);
    const __m512i qh = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 - 32 * (pair % 4 / 2))));
    __m512i lo, hi;  // hi: the two high bits in bits 4-5, first half bits 0-1 (k = 0) or 4-5 of qh
    if (pair % 2 == 0) {
      lo = _mm512_and_si512(ql, low4);
      hi = _mm512_mask_slli_epi16(_mm512_slli_epi16(qh, 2), 0x0000FFFFu, qh, 4);
    } else {
      lo = _mm512_and_si512(_mm512_srli_epi16(ql, 4), low4);
      hi = _mm512_mask_mov_epi16(_mm512_srli_epi16(qh, 2), 0x0000FFFFu, qh);
    }
    return _mm512_ternarylogic_epi32(lo, hi, high2, 0xF8);  // lo | (hi & 0x30)
  }
  struct Scales {
    __m512 sb[2];  // d·sc of the 16 scale groups of each super-block
  };
  Scales scales(const std::byte* base) const {
    Scales out;
    for (int i = 0; i < 2; ++i) {
      const std::byte* b = base + 210 * i;
      uint16_t h;
      std::memcpy(&h, b + 208, 2);
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
      out.sb[i] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                       reinterpret_cast<const __m128i*>(b + 192)))));
    }
    return out;
  }
  // Lane l of pair p's dot: scale group 4·(p mod 4) + l / 4 of super-block p / 4.
  static __m512 lane_scales(const Scales& sc, int p) {
    const __m512i idx =
        _mm512_add_epi32(_mm512_set1_epi32(4 * (p % 4)),
                         _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    return _mm512_permutexvar_ps(idx, sc.sb[p / 4]);
  }
};

// One 16-block step of a row towards L2 (or L1: gemv.h's PullTo), at the same columns of a row
// still to come while this one multiplies: a second stream from memory per core beside the one
// being read.
template <class P, PullTo kTo = PullTo::L2>
inline void pull_step(const std::byte* p) {
  for (int o = 0; o < P::kStep; o += 64) {
    const char* line = reinterpret_cast<const char*>(p + o);
    if constexpr (kTo == PullTo::L1)
      _mm_prefetch(line, _MM_HINT_T0);
    else
      _mm_prefetch(line, _MM_HINT_T1);
  }
}

}  // namespace
}  // namespace smoe::cpu
