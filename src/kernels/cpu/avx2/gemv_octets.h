// How the AVX2 eight-row tiles (gemv_avx2.cpp) read each weight type: 256 columns of eight rows
// at a time are unpacked into eight Octets, one per block of 32 columns, whose registers hold
// four columns of every row (dword lane r = row r), as the strip GEMM's repack lays out a strip,
// but in registers and on the stack: one broadcast of four activation bytes then multiplies
// eight rows. Header-only with internal linkage: include only from files built with AVX2.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx2/k4_scales.h"

namespace smoe::cpu {
namespace {

// One block of 32 columns of eight rows: w[g] holds columns 4g .. 4g + 3 of row r in dword lane
// r, as unsigned bytes u. Q4_0 and Q4_K: w = s0·u − s1 per lane (s0 = dw, s1 = mw of gemv.h);
// Q6_K: w = s0·(u − 32) in columns 0-15 and s1·(u − 32) in columns 16-31.
struct Octet {
  __m256i w[8];
  __m256 s0, s1;
};

// The eight rows of a tile: row i at p[i]. A tile past the matrix's last row repeats that row,
// so that every lane reads valid bytes; its results are not stored.
struct Rows8 {
  const std::byte* p[8];

  __m128i load16(int i, int64_t at) const {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[i] + at));
  }
  // Bytes at .. at + 15 of every row: g[k] holds bytes at + 4k .. at + 4k + 3 of row r in dword
  // lane r (a 4 × 4 dword transpose per 128-bit lane, rows 0-3 low, 4-7 high).
  void dwords(int64_t at, __m256i* g) const {
    __m256i y[4];
    for (int i = 0; i < 4; ++i)
      y[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(load16(i, at)), load16(i + 4, at), 1);
    const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
    g[0] = _mm256_unpacklo_epi64(t0, t2);
    g[1] = _mm256_unpackhi_epi64(t0, t2);
    g[2] = _mm256_unpacklo_epi64(t1, t3);
    g[3] = _mm256_unpackhi_epi64(t1, t3);
  }
  // The f16 at byte `at` of every row as floats (lane r = row r): one 4-byte load per row, whose
  // upper two bytes (or with kHigh, the f16 in them, at − 2 .. at + 1) the unpacks leave out.
  template <bool kHigh = false>
  __m256 halves(int64_t at) const {
    __m128i h[8];
    for (int i = 0; i < 8; ++i) {
      h[i] = _mm_loadu_si32(p[i] + at - (kHigh ? 2 : 0));
      if constexpr (kHigh) h[i] = _mm_srli_epi32(h[i], 16);
    }
    for (int i = 0; i < 4; ++i) h[i] = _mm_unpacklo_epi16(h[2 * i], h[2 * i + 1]);
    for (int i = 0; i < 2; ++i) h[i] = _mm_unpacklo_epi32(h[2 * i], h[2 * i + 1]);
    return _mm256_cvtph_ps(_mm_unpacklo_epi64(h[0], h[1]));
  }
  // Every cache line of bytes at .. at + n − 1 of each row towards L2.
  void pull(int64_t at, int n) const {
    for (int i = 0; i < 8; ++i) {
      const char* c = reinterpret_cast<const char*>(p[i] + at);
      for (int o = 0; o < n; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
      _mm_prefetch(c + n - 1, _MM_HINT_T1);
    }
  }
};

inline __m256i low4(__m256i v) {
  return _mm256_and_si256(v, _mm256_set1_epi8(0xF));
}
inline __m256i high4(__m256i v) {
  return low4(_mm256_srli_epi16(v, 4));
}

// Q4_0: eight 18-byte blocks (f16 d, 16 bytes: low nibbles columns 0-15, high 16-31), u − 8.
struct Q4_0Octets {
  static constexpr int kBytes = 8 * 18;  // of 256 columns
  static constexpr bool kSub = false;
  static void unpack(const Rows8& rs, int64_t at, Octet* o) {
    for (int b = 0; b < 8; ++b, at += 18) {
      __m256i g[4];
      rs.dwords(at + 2, g);
      for (int k = 0; k < 4; ++k) {
        o[b].w[k] = low4(g[k]);
        o[b].w[k + 4] = high4(g[k]);
      }
      o[b].s0 = rs.halves(at);
      o[b].s1 = _mm256_mul_ps(o[b].s0, _mm256_set1_ps(8.0f));
    }
  }
};

// Q4_K: one 144-byte super-block (f16 d and dmin, 12 bytes of 6-bit scales and mins, then per
// 64 columns 32 bytes: low nibbles sub-block 2c, high nibbles 2c + 1); w = d·sc·u − dmin·m.
struct Q4_KOctets {
  static constexpr int kBytes = 144;
  static constexpr bool kSub = false;
  static void unpack(const Rows8& rs, int64_t at, Octet* o) {
    for (int c = 0; c < 4; ++c) {
      __m256i g[8];
      rs.dwords(at + 16 + 32 * c, g);
      rs.dwords(at + 32 + 32 * c, g + 4);
      for (int k = 0; k < 8; ++k) {
        o[2 * c].w[k] = low4(g[k]);
        o[2 * c + 1].w[k] = high4(g[k]);
      }
    }
    __m256i h[4];  // d | dmin, then the scale bytes 0-3, 4-7, 8-11 (as quant::k4_scale_min)
    rs.dwords(at, h);
    const __m256 d = _mm256_cvtph_ps(lo_words(h[0]));
    const __m256 dmin = _mm256_cvtph_ps(lo_words(_mm256_srli_epi32(h[0], 16)));
    for (int j = 0; j < 8; ++j) {
      const auto [sc, mn] = k4_scale_min8(h[1], h[2], h[3], j);
      o[j].s0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
      o[j].s1 = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mn));
    }
  }
  // The low 16 bits of each dword lane, packed into 8 words.
  static __m128i lo_words(__m256i v) {
    const __m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(lo, lo), 0x08));
  }
};

// Q6_K: one 210-byte super-block (ql 128 bytes of low 4 bits, qh 64 bytes of high 2 bits, 16
// int8 scales of 16 columns each, f16 d); w = d·sc·(u − 32). In half h (128 columns) ql bytes
// 64h .. 64h + 31 hold columns 0-31 (low nibbles) and 64-95 (high), bytes 64h + 32 .. columns
// 32-63 and 96-127, and qh byte 32h + l bits 2k, 2k + 1 the high bits of column 32k + l.
struct Q6_KOctets {
  static constexpr int kBytes = 210;
  static constexpr bool kSub = true;
  static void unpack(const Rows8& rs, int64_t at, Octet* o) {
    const __m256i m2 = _mm256_set1_epi8(0x30);
    const auto join = [&](__m256i lo, __m256i hi) {  // lo: low 4 bits; hi: high 2 in bits 4-5
      return _mm256_or_si256(lo, _mm256_and_si256(hi, m2));
    };
    for (int h = 0; h < 2; ++h) {
      __m256i l0[8], l1[8], qh[8];
      for (int k = 0; k < 2; ++k) {
        rs.dwords(at + 64 * h + 16 * k, l0 + 4 * k);
        rs.dwords(at + 64 * h + 32 + 16 * k, l1 + 4 * k);
        rs.dwords(at + 128 + 32 * h + 16 * k, qh + 4 * k);
      }
      Octet* oo = o + 4 * h;
      for (int g = 0; g < 8; ++g) {
        oo[0].w[g] = join(low4(l0[g]), _mm256_slli_epi16(qh[g], 4));
        oo[1].w[g] = join(low4(l1[g]), _mm256_slli_epi16(qh[g], 2));
        oo[2].w[g] = join(high4(l0[g]), qh[g]);
        oo[3].w[g] = join(high4(l1[g]), _mm256_srli_epi16(qh[g], 2));
      }
    }
    __m256i sc4[4];  // scales 4k .. 4k + 3 of row r in dword lane r
    rs.dwords(at + 192, sc4);
    const __m256 d = rs.halves<true>(at + 208);  // the block's last 2 bytes
    for (int s = 0; s < 16; ++s) {               // sign-extend byte s % 4
      const __m256i sc = _mm256_srai_epi32(_mm256_slli_epi32(sc4[s / 4], 24 - 8 * (s % 4)), 24);
      (s % 2 ? o[s / 2].s1 : o[s / 2].s0) = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
    }
  }
};

}  // namespace
}  // namespace smoe::cpu
