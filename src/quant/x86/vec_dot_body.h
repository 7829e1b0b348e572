// The 256-bit bodies of the quantized dot products and activation quantizers, shared by the AVX2
// and AVX-512 (VL + VNNI) files. Include only from a file compiled with AVX2, FMA and F16C (or
// wider), after defining the instruction-set primitives as a struct `Ops`:
//   static __m256i dot_s8s8(__m256i acc, __m256i a, __m256i b);  // acc + Σ of 4 a·b (int8)
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
  return Ops::dot_s8s8(acc, _mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

// A chunk of 32 unsigned levels times 32 activations, scaled per group of 16, added to acc.
template <class Ops>
__m256i chunk(__m256i acc, __m256i levels, const int8_t* a, __m256i scales) {
  return Ops::madd16(acc, _mm256_maddubs_epi16(levels, load(a)), scales);
}

template <class Ops>
float dot_q8_0(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m256i p = dot_signed<Ops>(_mm256_setzero_si256(), load(b[i].qs), load(x[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(b[i].d) * h2f(x[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return hsum_ps(acc);
}

template <class Ops>
float dot_q4_0(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(w);
  const auto* x = static_cast<const BlockQ8_0*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; ++i) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), bytes(0xF));
    v = _mm256_sub_epi8(v, bytes(8));
    const __m256i p = dot_signed<Ops>(_mm256_setzero_si256(), v, load(x[i].qs));
    const __m256 d = _mm256_set1_ps(h2f(b[i].d) * h2f(x[i].d));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
  }
  return hsum_ps(acc);
}

// Q4_K and Q5_K share everything but the fifth bit.
template <class Ops, bool kFive, typename B>
float dot_k4(const B* b, const BlockQ8_K* x, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t sc[8], m[8];
    alignas(32) int16_t mins[16];
    for (int j = 0; j < 8; ++j) {
      k4_scale_min(j, b[i].scales, sc[j], m[j]);
      mins[2 * j] = mins[2 * j + 1] = m[j];
    }
    __m256i isum = _mm256_setzero_si256();
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
      isum = chunk<Ops>(isum, lo, x[i].qs + 64 * p, _mm256_set1_epi16(sc[2 * p]));
      isum = chunk<Ops>(isum, hi, x[i].qs + 64 * p + 32, _mm256_set1_epi16(sc[2 * p + 1]));
    }
    const __m256i msum = group_sums(x[i].bsums, mins);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(isum), acc);
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

template <class Ops>
float dot_q6_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    alignas(32) int16_t sc[16];
    for (int g = 0; g < 16; ++g) sc[g] = b[i].scales[g];
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q1 = load(b[i].ql + 64 * h), q2 = load(b[i].ql + 64 * h + 32);
      const __m256i hb = load(b[i].qh + 32 * h);
      const __m256i m3 = bytes(3), mf = bytes(0xF);
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
        isum = chunk<Ops>(isum, c[k], x[i].qs + 128 * h + 32 * k, pair_scales(sc[g], sc[g + 1]));
      }
    }
    // The levels are stored plus 32: subtract 32·Σ scale·(group sum).
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(group_sums(x[i].bsums, sc), 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum_ps(acc);
}

// The two-bit levels of chunk k (0..7) of a Q2_K / Q3_K block: bits 2(k % 4).. of qs[32(k / 4)..].
inline __m256i q2_chunk(const uint8_t* qs, int k) {
  const __m256i q = load(qs + 32 * (k / 4));
  return _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), bytes(3));
}

template <class Ops>
float dot_q2_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    alignas(32) int16_t sc[16], mins[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = b[i].scales[g] & 0xF;
      mins[g] = b[i].scales[g] >> 4;
    }
    __m256i isum = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k)
      isum = chunk<Ops>(isum, q2_chunk(b[i].qs, k), x[i].qs + 32 * k,
                        pair_scales(sc[2 * k], sc[2 * k + 1]));
    const __m256i msum = group_sums(x[i].bsums, mins);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].dmin)), _mm256_cvtepi32_ps(msum), acc);
  }
  return hsum_ps(acc);
}

template <class Ops>
float dot_q3_k(const void* w, const void* act, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(w);
  const auto* x = static_cast<const BlockQ8_K*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQKK; ++i) {
    alignas(32) int16_t sc[16];
    const uint8_t* s = b[i].scales;
    for (int g = 0; g < 16; ++g) {
      const int low = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
      sc[g] = static_cast<int16_t>((low | (((s[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)) - 32);
    }
    __m256i isum = _mm256_setzero_si256();
    __m256i hm = load(b[i].hmask);  // bit k of byte l: the high bit of weight 32k + l
    for (int k = 0; k < 8; ++k) {
      const __m256i high = _mm256_and_si256(_mm256_slli_epi16(hm, 2), bytes(4));
      isum = chunk<Ops>(isum, _mm256_or_si256(q2_chunk(b[i].qs, k), high), x[i].qs + 32 * k,
                        pair_scales(sc[2 * k], sc[2 * k + 1]));
      hm = _mm256_srli_epi16(hm, 1);
    }
    // Levels are stored plus 4 (high bit set) : subtract 4·Σ scale·(group sum).
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(group_sums(x[i].bsums, sc), 2));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(b[i].d)), _mm256_cvtepi32_ps(isum), acc);
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
