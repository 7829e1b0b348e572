// AVX2 small-batch kernels (see gemv.h), in three forms.
// Row by row (row_tile: Q8_0, and Q4_0 for one token): a step covers 8 blocks of a row, whose 8
// f16 scales become one vector, multiplied by the 8 activation scales of each token, and the
// offset term −c·Σ dw·sum is one fused multiply-add per 8 blocks. Each block is unpacked once into
// 32 bytes in column order, like the token's 32 activation bytes, so one vpmaddubsw + vpmaddwd per
// token gives its eight int32 partial sums, scaled by that block's dw·d.
// Eight rows at a time (octet_tile: Q4_0 from 2 tokens, Q4_K and Q6_K): the rows' blocks are
// transposed so that a register holds four columns of each row (gemv_octets.h); one broadcast of
// four activation bytes then multiplies eight rows, and the conversion and scaling of a block's
// sums cover eight rows at once instead of one. Measured from memory (14336 × 4096, 2 threads,
// bench/bench_kernels.cpp BM_MatmulMemory) against the strip GEMM, which repacks the rows at
// every call: Q4_0 3 tokens 2.8–3.1 ms against 4.2–4.6, 4 tokens 2.9–3.6 against 4.8–5.0, 8
// tokens 4.7 against 5.5–6; Q4_K 3 tokens 2.9 against 9.4, 8 tokens 6.6 against 12.3; Q6_K one
// token 3.2 against 8.2 through the dot product, 8 tokens 12.1 against 21.6 (noisy machine).
// Q4_0 interleaved by eight rows at load (rows8_tile, kernels/layout.h): the eight-row tiles
// without the transposes, the weights held in registers through all tokens. From memory, the same
// runs alternating with the file's layout (BM_MatmulMemory/Q4_0_Rows8_Avx2 against Q4_0_Avx2):
// 1 token 1.56–1.78 ms against 1.75–2.01, 2 tokens 1.94–2.08 against 2.22–2.23, 3 tokens
// 2.08–2.38 against 2.55–2.98, 8 tokens 5.1–5.3 against 5.6–6.0; batched decoding of 8
// sequences (Mixtral-2L Q4_0, smoe bench --seqs 8) 68–73 → 84–85 tok/s.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

#include "kernels/cpu/avx2/gemv_octets.h"
#include "kernels/cpu/avx2/half_lanes.h"
#include "kernels/cpu/gemv.h"
#include "kernels/cpu/simd_sum.h"

namespace smoe::cpu {
namespace {

// Q4_0 (18-byte blocks: f16 d, 16 bytes of nibbles): low nibbles are columns 0-15, high nibbles
// columns 16-31, as unsigned bytes u ∈ [0, 15]; w = d·(u − 8).
struct Q4_0Block {
  static constexpr int kBytes = 18, kC = 8;
  static constexpr bool kSigned = false;
  static __m256i load(const std::byte* p) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF));
  }
};

// Q8_0 (34-byte blocks: f16 d, 32 int8). Its bytes as q + 128 would overflow vpmaddubsw's int16
// pairs, so they multiply as |q| times the activations with q's sign: w = d·q, no offset term.
struct Q8_0Block {
  static constexpr int kBytes = 34, kC = 128;
  static constexpr bool kSigned = true;
  static __m256i load(const std::byte* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
  }
};

// kN tokens (of the acts at a, from token t0) with one row. Each step also pulls the same bytes of
// the next row (if any) into L2: the row being multiplied and the next one are then two streams
// from memory at once, which one core's hardware prefetcher alone does not keep busy enough
// (decode of the Mixtral-2L Q4_0 file 34-36 → 38-45 tok/s with 2 threads). L2, not L1, as
// gemv_pairs.h's pull_step: Q8_0 from memory 26.1–26.5 GB/s against 21.5–21.6 (one token).
template <class B, int kN>
void row_tile(const std::byte* row, const std::byte* next, int64_t nb, const GemvActs& a, int t0,
              float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kN][2], off[kN];  // two accumulators per token: even and odd blocks (latency)
  for (int t = 0; t < kN; ++t) acc[t][0] = acc[t][1] = off[t] = _mm256_setzero_ps();
  for (int64_t j = 0; j < nb; j += 8) {
    const std::byte* base = row + j * B::kBytes;
    if (next)
      for (int l = 0; l < 8 * B::kBytes; l += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + j * B::kBytes + l), _MM_HINT_T1);
    const __m256 dw = halves8(base, B::kBytes);  // the 8 blocks' f16 scales
    alignas(32) float s[kN][8];                  // dw·d of each block, for each token
    for (int t = 0; t < kN; ++t) {
      const int64_t at = (t0 + t) * a.b_stride + j;
      _mm256_store_ps(s[t], _mm256_mul_ps(dw, _mm256_loadu_ps(a.d + at)));
      if constexpr (!B::kSigned) off[t] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(a.sum + at), off[t]);
    }
    for (int p = 0; p < 8; ++p) {
      __m256i u = B::load(base + p * B::kBytes), sign = u;
      if constexpr (B::kSigned) u = _mm256_sign_epi8(u, u);
      for (int t = 0; t < kN; ++t) {
        __m256i x = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(a.qs + (t0 + t) * a.q_stride + (j + p) * 32));
        if constexpr (B::kSigned) x = _mm256_sign_epi8(x, sign);
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), ones);
        __m256& a2 = acc[t][p % 2];
        a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(&s[t][p]), a2);
      }
    }
  }
  for (int t = 0; t < kN; ++t) {
    const __m256 v = _mm256_fmadd_ps(off[t], _mm256_set1_ps(-static_cast<float>(B::kC)),
                                     _mm256_add_ps(acc[t][0], acc[t][1]));
    y[(t0 + t) * ldy] = hsum(v);
  }
}

template <class B>
void rows(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  using Tile =
      void (*)(const std::byte*, const std::byte*, int64_t, const GemvActs&, int, float*, int64_t);
  static constexpr std::array<Tile, 4> kTiles = {row_tile<B, 1>, row_tile<B, 2>, row_tile<B, 3>,
                                                 row_tile<B, 4>};
  const int64_t nb = w.cols / 32;
  for (int64_t r = r0; r < r1; ++r)  // up to 4 tokens per pass; the row stays in L1 between
    for (int t0 = 0; t0 < a.n; t0 += 4)
      kTiles[static_cast<size_t>(std::min(4, a.n - t0) - 1)](
          w.row(r), r + 1 < r1 && t0 == 0 ? w.row(r + 1) : nullptr, nb, a, t0, y + r, ldy);
}

// Token t's activations where the eight-row tiles read them: q from block j on, its d and sum.
struct TokenActs {
  const int8_t* q;
  const float* d;
  const float* sum;
  const int32_t* sum4;
};

// One token with the eight rows of block j (unpacked in o), added into acc: the eight column
// quads add up in int16 (Q4_0 and Q4_K: 8 · 2 · 15 · 127 < 2^15; Q6_K two at a time, 2 · 2 · 63 ·
// 127), one vpmaddwd widens them, and one conversion and one scaling cover the eight rows. The
// weights come from o in L1 with each multiply, so that the registers hold only the sums.
template <bool kSub>
inline __m256 multiply(const Octet& o, int64_t j, const TokenActs& x, __m256 acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  // The compiler would otherwise keep the eight weight registers through the tokens and move
  // their accumulators to the stack; an empty asm makes it read them again for each token.
  const __m256i* w = o.w;
  asm("" : "+r"(w));
  const auto quad = [&](int g) {  // columns 4g .. 4g + 3 times the rows
    int32_t v;
    std::memcpy(&v, x.q + 32 * j + 4 * g, 4);
    return _mm256_maddubs_epi16(_mm256_load_si256(w + g), _mm256_set1_epi32(v));
  };
  if constexpr (!kSub) {
    __m256i sum = quad(0);
    for (int g = 1; g < 8; ++g) sum = _mm256_add_epi16(sum, quad(g));
    const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(sum, ones));
    acc = _mm256_fmadd_ps(dot, _mm256_mul_ps(o.s0, _mm256_broadcast_ss(x.d + j)), acc);
    return _mm256_fnmadd_ps(o.s1, _mm256_broadcast_ss(x.sum + j), acc);
  } else {
    for (int h = 0; h < 2; ++h) {  // scale groups of 16 columns
      const __m256i p0 = _mm256_add_epi16(quad(4 * h), quad(4 * h + 1));
      const __m256i p1 = _mm256_add_epi16(quad(4 * h + 2), quad(4 * h + 3));
      const int32_t* s4 = x.sum4 + 8 * j + 4 * h;
      const __m256i dot = _mm256_sub_epi32(  // Σ (u − 32)·q
          _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones)),
          _mm256_set1_epi32(32 * (s4[0] + s4[1] + s4[2] + s4[3])));
      const __m256 s = _mm256_mul_ps(h ? o.s1 : o.s0, _mm256_broadcast_ss(x.d + j));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc);
    }
    return acc;
  }
}

// Eight rows × kN tokens. Each step unpacks 256 columns of the eight rows (into L1) and pulls
// the same bytes of the next eight rows (if any) into L2, as row_tile does for one row; then every
// token multiplies each block. Lanes never mix, so a row's result does not depend on the rows
// beside it.
template <class T, int kN>
void octet_tile(const Rows8& rs, const Rows8* next, int64_t nb, const GemvActs& a, float* y,
                int64_t ldy, int nr) {
  TokenActs x[kN];
  __m256 acc[kN];
  for (int t = 0; t < kN; ++t) {
    x[t] = {a.qs + t * a.q_stride, a.d + t * a.b_stride, a.sum + t * a.b_stride,
            a.sum4 + t * a.q_stride / 4};
    acc[t] = _mm256_setzero_ps();
  }
  Octet o[8];
  for (int64_t j = 0; j < nb; j += 8) {
    const int64_t at = j / 8 * T::kBytes;
    if (next) next->pull(at, T::kBytes);
    T::unpack(rs, at, o);
#pragma GCC unroll 1
    for (int b = 0; b < 8; ++b)
#pragma GCC unroll 8  // so that acc stays in registers
      for (int t = 0; t < kN; ++t) acc[t] = multiply<T::kSub>(o[b], j + b, x[t], acc[t]);
  }
  for (int t = 0; t < kN; ++t) {
    alignas(32) float v[8];
    _mm256_store_ps(v, acc[t]);
    std::copy_n(v, nr, y + t * ldy);
  }
}

// Rows r .. r + 7 of w (the last one repeated past r1).
Rows8 rows8(const Matrix& w, int64_t r, int64_t r1) {
  Rows8 rs;
  for (int i = 0; i < 8; ++i) rs.p[i] = w.row(std::min(r + i, r1 - 1));
  return rs;
}

template <class T>
void octets(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  using Tile = void (*)(const Rows8&, const Rows8*, int64_t, const GemvActs&, float*, int64_t, int);
  static constexpr std::array<Tile, kGemvMaxTokens> kTiles = {
      octet_tile<T, 1>, octet_tile<T, 2>, octet_tile<T, 3>, octet_tile<T, 4>,
      octet_tile<T, 5>, octet_tile<T, 6>, octet_tile<T, 7>, octet_tile<T, 8>};
  for (int64_t r = r0; r < r1; r += 8) {
    const Rows8 rs = rows8(w, r, r1), next = rows8(w, r + 8, r1);
    kTiles[static_cast<size_t>(a.n - 1)](rs, r + 8 < r1 ? &next : nullptr, w.cols / 32, a, y + r,
                                         ldy, static_cast<int>(std::min<int64_t>(8, r1 - r)));
  }
}

// Q4_0 interleaved by eight (Rows8, kernels/layout.h), kN tokens with the group of eight rows
// at g. A block's eight weight registers are four loads, each split into low and high nibbles,
// and stay in registers while every token multiplies them (octet_tile instead reads them back
// from L1 for each token, having spent its registers on the transposes); the tokens' sums wait
// in L1 between blocks. The group is one stream from memory; each step pulls the same bytes of
// the next group towards L2.
template <int kN>
void rows8_tile(const std::byte* g, const std::byte* next, int64_t nb, const GemvActs& a, float* y,
                int64_t ldy, int nr) {
  alignas(32) float acc[kN][8] = {};
  const std::byte* scales = g + 128 * nb;
  const __m256i m4 = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
  for (int64_t j = 0; j < nb; ++j) {
    if (next && j % 8 == 0) {
      const char* c = reinterpret_cast<const char*>(next + 128 * j);
      for (int l = 0; l < 1024; l += 64) _mm_prefetch(c + l, _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + 128 * nb + 16 * j), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(next + 128 * nb + 16 * j + 127), _MM_HINT_T1);
    }
    const std::byte* q = g + 128 * j;
    __m256i w[8];
    for (int k = 0; k < 4; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * k));
      w[k] = _mm256_and_si256(v, m4);
      w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 16 * j)));
    const __m256 mw = _mm256_mul_ps(dw, _mm256_set1_ps(8.0f));
#pragma GCC unroll 8
    for (int t = 0; t < kN; ++t) {
      const int8_t* xq = a.qs + t * a.q_stride + 32 * j;
      const auto quad = [&](int k) {
        int32_t v;
        std::memcpy(&v, xq + 4 * k, 4);
        return _mm256_maddubs_epi16(w[k], _mm256_set1_epi32(v));
      };
      __m256i sum = quad(0);
      for (int k = 1; k < 8; ++k) sum = _mm256_add_epi16(sum, quad(k));
      const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(sum, ones));
      __m256 r = _mm256_load_ps(acc[t]);
      r = _mm256_fmadd_ps(dot, _mm256_mul_ps(dw, _mm256_broadcast_ss(a.d + t * a.b_stride + j)), r);
      r = _mm256_fnmadd_ps(mw, _mm256_broadcast_ss(a.sum + t * a.b_stride + j), r);
      _mm256_store_ps(acc[t], r);
    }
  }
  for (int t = 0; t < kN; ++t) std::copy_n(acc[t], nr, y + t * ldy);
}

void gemv_q4_0_rows8(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y,
                     int64_t ldy) {
  using Tile =
      void (*)(const std::byte*, const std::byte*, int64_t, const GemvActs&, float*, int64_t, int);
  static constexpr std::array<Tile, kGemvMaxTokens> kTiles = {
      rows8_tile<1>, rows8_tile<2>, rows8_tile<3>, rows8_tile<4>,
      rows8_tile<5>, rows8_tile<6>, rows8_tile<7>, rows8_tile<8>};
  for (int64_t r = r0; r < r1; r += 8)  // r0 is a multiple of 8 (row_group)
    kTiles[static_cast<size_t>(a.n - 1)](w.row(r), r + 8 < r1 ? w.row(r + 8) : nullptr, w.cols / 32,
                                         a, y + r, ldy,
                                         static_cast<int>(std::min<int64_t>(8, r1 - r)));
}

// Q4_0: row by row up to kOctetsFrom − 1 tokens, eight-row tiles from there. From memory
// (BM_MatmulMemory, 2 threads): 2 tokens 1.82–1.92 ms in tiles against 2.39 row by row; one
// token 1.34–1.44 row by row against 1.56 in tiles. Batched decoding of 8 sequences (Mixtral-2L
// Q4_0): 81–83 → 83–87 tok/s.
constexpr int kOctetsFrom = 2;

void gemv_q4_0(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  if (a.n >= kOctetsFrom) return octets<Q4_0Octets>(w, r0, r1, a, y, ldy);
  rows<Q4_0Block>(w, r0, r1, a, y, ldy);
}

}  // namespace

const GemvKernels& gemv_kernels_avx2() {
  static const GemvKernels k{"avx2",
                             gemv_q4_0,
                             rows<Q8_0Block>,
                             octets<Q4_KOctets>,
                             octets<Q6_KOctets>,
                             {1, kGemvMaxTokens},
                             {1, 4},
                             {1, kGemvMaxTokens},
                             {1, kGemvMaxTokens},
                             8,
                             false,
                             nullptr,
                             gemv_q4_0_rows8};
  return k;
}

}  // namespace smoe::cpu
