// AVX2 small-batch kernels (see gemv.h). A step covers 8 blocks of a row: their 8 f16 scales
// become one vector, multiplied by the 8 activation scales of each token, and the offset term
// −c·Σ dw·sum is one fused multiply-add per 8 blocks. Each block is unpacked once into 32 bytes in
// column order, like the token's 32 activation bytes, so one vpmaddubsw + vpmaddwd per token gives
// its eight int32 partial sums, scaled by that block's dw·d.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>

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
void gemv(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
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

}  // namespace

const GemvKernels& gemv_kernels_avx2() {
  static const GemvKernels k{"avx2", gemv<Q4_0Block>, gemv<Q8_0Block>, nullptr, nullptr,
                             {1, 2}, {1, 2},          {1, 0},          {1, 0}};
  return k;
}

}  // namespace smoe::cpu
