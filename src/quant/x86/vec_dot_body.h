// The 256-bit bodies of the quantized dot products and activation quantizers, shared by the AVX2
// and AVX-512 (VL + VNNI) files. Include only from a file compiled with AVX2, FMA and F16C (or
// wider), after defining the instruction-set primitives as a struct `Ops`:
//   static __m256i dot_u8s8(__m256i acc, __m256i a, __m256i b);  // acc + Σ of 4 a·b (u8 × s8)
//   static __m256i madd16(__m256i acc, __m256i a, __m256i b);    // acc + Σ of 2 a·b (int16)
// Everything here has internal linkage, so the two instantiations never meet at link time.
//
// Layouts (see src/quant/vec_dot.cpp for the scalar statement): the k-quants are handled in
// eight chunks of 32 consecutive weights; each chunk is turned into unsigned levels (u8), which
// maddubs multiplies with the int8 activations, and madd16 with the scales of its two groups of
// 16. Offsets (Q3_K's −4, Q6_K's −32) and mins are applied with the activation block sums.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"

namespace smoe::quant {
namespace {

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

inline __m256i bytes(int v) {
  return _mm256_set1_epi8(static_cast<char>(v));
}

// The two groups' scales of a chunk: low 128 bits s_lo, high 128 bits s_hi (int16).
inline __m256i pair_scales(int s_lo, int s_hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s_hi)),
                          _mm_set1_epi16(static_cast<int16_t>(s_lo)));
}

// Σ over each group g of c[g]·bsums[g], spread over 8 int32 lanes.
inline __m256i group_sums(const int16_t* bsums, const int16_t* c) {
  return _mm256_madd_epi16(load(bsums), load(c));
}

// Signed int8 × signed int8, via |a| and b with a's sign (|a| ≤ 128 and |b| ≤ 127).
template <class Ops>
__m256i dot_signed(__m256i acc, __m256i a, __m256i b) {
  return Ops::dot_u8s8(acc, _mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

// A chunk of 32 unsigned levels times 32 activations, scaled per group of 16, added to acc.
template <class Ops>
__m256i chunk(__m256i acc, __m256i levels, const int8_t* a, __m256i scales) {
  return Ops::madd16(acc, _mm256_maddubs_epi16(levels, load(a)), scales);
}

// The 32 nibbles of a legacy block in weight order: low nibbles are weights 0..15.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), bytes(0xF));
}

// Bit j of the 32-bit qh as 0x10 in byte j (the fifth bit of Q5_0 / Q5_1 weight j).
inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(h)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), bytes(0x10));
}

// Σ over the blocks of d_w·d_a·(int dot of block i), with two accumulators to hide FMA latency.
// `ints(i)` gives block i's eight int32 partial sums.
template <typename W, typename A, typename F>
float sum_blocks(const W* b, const A* x, int64_t nb, F ints) {
  auto step = [&](int64_t i, __m256 acc) {
    const __m256 d = _mm256_set1_ps(h2f(b[i].d) * h2f(x[i].d));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(ints(i)), acc);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 1 < nb; i += 2) {
    acc0 = step(i, acc0);
    acc1 = step(i + 1, acc1);
  }
  if (i < nb) acc0 = step(i, acc0);
  return hsum_ps(_mm256_add_ps(acc0, acc1));
}

// Q4_1 / Q5_1 also add m·(d_a·Σq) per block.
template <typename W>
float sum_mins(const W* b, const BlockQ8_1* x, int64_t nb) {
  float s = 0;
  for (int64_t i = 0; i < nb; ++i) s += h2f(b[i].m) * h2f(x[i].s);
  return s;
}

template <class Ops>
float dot_q8_0(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(act);
  return sum_blocks(b, x, n / kQK, [&](int64_t i) {
    return dot_signed<Ops>(_mm256_setzero_si256(), load(b[i].qs), load(x[i].qs));
  });
}

template <class Ops>
float dot_q4_0(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(act);
  return sum_blocks(b, x, n / kQK, [&](int64_t i) {
    const __m256i v = _mm256_sub_epi8(nibbles(b[i].qs), bytes(8));
    return dot_signed<Ops>(_mm256_setzero_si256(), v, load(x[i].qs));
  });
}

template <class Ops>
float dot_q5_0(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(act);
  return sum_blocks(b, x, n / kQK, [&](int64_t i) {
    const __m256i v = _mm256_or_si256(nibbles(b[i].qs), fifth_bits(b[i].qh));
    return dot_signed<Ops>(_mm256_setzero_si256(), _mm256_sub_epi8(v, bytes(16)), load(x[i].qs));
  });
}

template <class Ops>
float dot_q4_1(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(w);
  const auto* x = static_cast<const BlockQ8_1*>(act);
  return sum_mins(b, x, n / kQK) + sum_blocks(b, x, n / kQK, [&](int64_t i) {
           return Ops::dot_u8s8(_mm256_setzero_si256(), nibbles(b[i].qs), load(x[i].qs));
         });
}

template <class Ops>
float dot_q5_1(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(w);
  const auto* x = static_cast<const BlockQ8_1*>(act);
  return sum_mins(b, x, n / kQK) + sum_blocks(b, x, n / kQK, [&](int64_t i) {
           const __m256i v = _mm256_or_si256(nibbles(b[i].qs), fifth_bits(b[i].qh));
           return Ops::dot_u8s8(_mm256_setzero_si256(), v, load(x[i].qs));
         });
}

// The scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K / Q5_K block (quant/blocks.h).
inline __m128i k4_scales(const uint8_t* q) {
  uint32_t sm[4];
  k4_scales_mins(q, sm);
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(sm));
}

// Element j of eight int16 (in both 128-bit halves of v) broadcast to all 16 lanes.
inline __m256i broadcast16(__m256i v, int j) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j)));
}

// Q4_K and Q5_K share everything but the fifth bit.
template <class Ops, bool kFive, typename B>
float dot_k4(const B* b, const BlockQ8_K* x, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const __m128i sm = k4_scales(b[i].scales);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm));
    // Each min twice, for the two groups of 16 of its sub-block.
    const __m256i mins =
        _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kFive) hb = load(b[i].qh);
    for (int p = 0; p < 4; ++p) {
      const __m256i q = load(b[i].qs + 32 * p);
      __m256i lo = _mm256_and_si256(q, bytes(0xF));
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), bytes(0xF));
      if constexpr (kFive) {  // bit 2p of qh → bit 4 of lo, bit 2p + 1 → bit 4 of hi
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bytes(0x10)));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bytes(0x10)));
        hb = _mm256_srli_epi16(hb, 2);
      }
      isum[0] = chunk<Ops>(isum[0], lo, x[i].qs + 64 * p, broadcast16(sc16, 2 * p));
      isum[1] = chunk<Ops>(isum[1], hi, x[i].qs + 64 * p + 32, broadcast16(sc16, 2 * p + 1));
    }
    const __m256i msum = _mm256_madd_epi16(load(x[i].bsums), mins);
    const __m256 is = _mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1]));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), is, acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].dmin)), _mm256_cvtepi32_ps(msum), acc);
  }
  return hsum_ps(acc);
}

template <class Ops>
float dot_q4_k(const void* w, const void* act, int64_t n) {
  return dot_k4<Ops, false>(static_cast<const BlockQ4_K*>(w), static_cast<const BlockQ8_K*>(act),
                            n / kQKK);
}

template <class Ops>
float dot_q5_k(const void* w, const void* act, int64_t n) {
  return dot_k4<Ops, true>(static_cast<const BlockQ5_K*>(w), static_cast<const BlockQ8_K*>(act),
                           n / kQKK);
}

// Sixteen int8 scales as int16, stored for pair_scales.
inline void widen_scales(const int8_t* s, int16_t out[16]) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                     _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s))));
}

template <class Ops>
float dot_q6_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  const __m256i m3 = bytes(3), mf = bytes(0xF);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    alignas(32) int16_t sc[16];
    widen_scales(b[i].scales, sc);
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int h = 0; h < 2; ++h) {
      const __m256i q1 = load(b[i].ql + 64 * h), q2 = load(b[i].ql + 64 * h + 32);
      const __m256i hb = load(b[i].qh + 32 * h);
      const __m256i c[4] = {
          _mm256_or_si256(_mm256_and_si256(q1, mf), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
          _mm256_or_si256(_mm256_and_si256(q2, mf),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), mf),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 4), mf),
                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), bytes(0x30))),
      };
      for (int k = 0; k < 4; ++k) {
        const int g = 8 * h + 2 * k;
        isum[k & 1] = chunk<Ops>(isum[k & 1], c[k], x[i].qs + 128 * h + 32 * k,
                                 pair_scales(sc[g], sc[g + 1]));
      }
    }
    // The levels are stored plus 32: subtract 32·Σ scale·(group sum).
    const __m256i off = _mm256_slli_epi32(group_sums(x[i].bsums, sc), 5);
    const __m256i is = _mm256_sub_epi32(_mm256_add_epi32(isum[0], isum[1]), off);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(is), acc);
  }
  return hsum_ps(acc);
}

template <class Ops>
float dot_q2_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].scales));
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc),
                       _mm256_cvtepu8_epi16(_mm_and_si128(s8, _mm_set1_epi8(0xF))));
    const __m256i mins =
        _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0xF)));
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int h = 0; h < 2; ++h) {
      __m256i q = load(b[i].qs + 32 * h);  // weight 128h + 32s + l: bits 2s of byte l
      for (int s = 0; s < 4; ++s, q = _mm256_srli_epi16(q, 2)) {
        const int k = 4 * h + s;
        isum[s & 1] = chunk<Ops>(isum[s & 1], _mm256_and_si256(q, bytes(3)), x[i].qs + 32 * k,
                                 pair_scales(sc[2 * k], sc[2 * k + 1]));
      }
    }
    const __m256i msum = _mm256_madd_epi16(load(x[i].bsums), mins);
    const __m256 is = _mm256_cvtepi32_ps(_mm256_add_epi32(isum[0], isum[1]));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), is, acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].dmin)), _mm256_cvtepi32_ps(msum), acc);
  }
  return hsum_ps(acc);
}

// The 16 signed 6-bit scales of a Q3_K block: low 4 bits of group g in the nibbles of bytes
// 0..7 (low nibble for g < 8), top 2 bits at bits 2(g / 4) of byte 8 + g % 4; biased by 32.
inline void q3_scales(const uint8_t* s, int16_t out[16]) {
  uint32_t u[3];
  std::memcpy(u, s, 12);
  const uint32_t lo4 = 0x0f0f0f0f, lo2 = 0x03030303;
  const uint32_t g[4] = {(u[0] & lo4) | ((u[2] & lo2) << 4),
                         (u[1] & lo4) | (((u[2] >> 2) & lo2) << 4),
                         ((u[0] >> 4) & lo4) | (((u[2] >> 4) & lo2) << 4),
                         ((u[1] >> 4) & lo4) | (((u[2] >> 6) & lo2) << 4)};
  const __m128i v = _mm_sub_epi8(_mm_setr_epi32(static_cast<int>(g[0]), static_cast<int>(g[1]),
                                                static_cast<int>(g[2]), static_cast<int>(g[3])),
                                 _mm_set1_epi8(32));
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), _mm256_cvtepi8_epi16(v));
}

template <class Ops>
float dot_q3_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    alignas(32) int16_t sc[16];
    q3_scales(b[i].scales, sc);
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    __m256i hm = load(b[i].hmask);  // bit k of byte l: the high bit of weight 32k + l
    for (int h = 0; h < 2; ++h) {
      __m256i q = load(b[i].qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const int k = 4 * h + s;
        const __m256i high = _mm256_and_si256(_mm256_slli_epi16(hm, 2), bytes(4));
        const __m256i levels = _mm256_or_si256(_mm256_and_si256(q, bytes(3)), high);
        isum[s & 1] = chunk<Ops>(isum[s & 1], levels, x[i].qs + 32 * k,
                                 pair_scales(sc[2 * k], sc[2 * k + 1]));
        q = _mm256_srli_epi16(q, 2);
        hm = _mm256_srli_epi16(hm, 1);
      }
    }
    // Levels are stored plus 4 (high bit set): subtract 4·Σ scale·(group sum).
    const __m256i off = _mm256_slli_epi32(group_sums(x[i].bsums, sc), 2);
    const __m256i is = _mm256_sub_epi32(_mm256_add_epi32(isum[0], isum[1]), off);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(is), acc);
  }
  return hsum_ps(acc);
}

// Largest |x| over n (a multiple of 32) floats.
inline float amax_of(const float* x, int n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8)
    m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
  __m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  r = _mm_max_ps(r, _mm_movehl_ps(r, r));
  r = _mm_max_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// 32 floats times s, rounded half to even, as 32 int8 in order.
inline __m256i round32(const float* x, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  __m256i v[4];
  for (int j = 0; j < 4; ++j)
    v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), vs));
  const __m256i p =
      _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = amax_of(x, kQK) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), round32(x, id));
  }
}

inline void quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    const float amax = amax_of(x, kQKK), is = amax > 0 ? 127.0f / amax : 0.0f;
    b[i].d = amax > 0 ? 1.0f / is : 0.0f;
    for (int k = 0; k < 8; ++k) {
      const __m256i q = round32(x + 32 * k, is);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs + 32 * k), q);
      // Sums of 4 bytes in each int32, then of 16 in element 0 of each 128-bit half.
      __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(bytes(1), q), _mm256_set1_epi16(1));
      s = _mm256_hadd_epi32(s, s);
      s = _mm256_hadd_epi32(s, s);
      b[i].bsums[2 * k] = static_cast<int16_t>(_mm256_extract_epi32(s, 0));
      b[i].bsums[2 * k + 1] = static_cast<int16_t>(_mm256_extract_epi32(s, 4));
    }
  }
}

}  // namespace
}  // namespace smoe::quant
