// AMX small-batch kernels (see gemv.h): 16 weight rows at a time, all tokens of the batch in one
// tile product per pair of blocks. The 16 rows' pair is unpacked (as gemv_pairs.h lays it out)
// into an A tile of 16 rows × 64 bytes and multiplied with the pair's activation tile (gemv.h:
// the two blocks' 8 tokens in separate columns, zeros past the batch); the 16 × 8 integer sums of
// each block are then scaled in AVX-512 by dw·d. The work per pair does not grow with the batch
// (a VNNI kernel runs one vpdpbusd per token and pair), so 8 tokens cost what 1 does: Q4_0 read
// from memory (0.8 GB, 4096 columns, 2 threads, Xeon with AMX) streams at 17–18 GB/s for any
// batch, against 23 (1 token), 17.3 (4), 12.1 (5) and 9.5 (8) for the VNNI kernels.
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/gemv.h"

namespace smoe::cpu {
namespace {

constexpr int kRows = 16;  // weight rows per group: an A tile's rows
// Steps (16 blocks) of prefetch distance: one (Q4_K from memory, 8 tokens, 14.0–14.4 GB/s)
// beat two (13.1–13.7) and four (12.5).
constexpr int kAhead = 1;
constexpr int kLag = 8;  // pairs of buffers between the stages

// Tiles 0, 1: the int32 sums of a pair of blocks (16 rows × 8 tokens of each block); 2, 3: the
// pair's weights (16 rows × 64 bytes); 4, 5: its activations (gemv.h). Even pairs take 0, 2, 4,
// odd ones 1, 3, 5, so that one pair's product need not wait for the last one's to be stored.
void configure_gemv_tiles() {
  constexpr uint8_t rows[6] = {kRows, kRows, kRows, kRows, kRows, kRows};
  constexpr uint16_t colsb[6] = {64, 64, 64, 64, 64, 64};
  configure_tiles(6, rows, colsb);
}

// The 16 rows' scales of a 16-block step, row by row (mw: the offset coefficients, kMins only).
struct StepRows {
  alignas(64) float dw[kRows][16], mw[kRows][16];
};

// A group's buffers between the stages, kLag pairs of each.
struct GroupBuffers {
  alignas(64) int8_t wq[kLag][kRows][64];  // a pair of blocks of the 16 rows, unpacked
  alignas(64) int32_t c[kLag][kRows][16];  // row r: 8 tokens of block 2p, then 8 of 2p + 1
  StepRows sc[3];                          // by step, mod 3
};

// Pair q of the 16 rows at `row` (its step's scales first) into the buffers.
template <class P>
inline void unpack(const P& pair, const Unpack<P>& bytes, const std::byte* row, size_t stride,
                   int64_t nb, int64_t q, GroupBuffers& g) {
  const int64_t step = q / 8;
  if (q % 8 == 0) {
    // The 16 rows' step kAhead on (past the rows' end: the next group's first steps, or past the
    // matrix, which a prefetch may touch) towards L1: 16 streams at once are more than the
    // hardware prefetchers follow.
    const int64_t ahead = step + kAhead, steps = nb / 16;
    const std::byte* next =
        row + (ahead < steps ? ahead * P::kStep : kRows * stride + (ahead - steps) * P::kStep);
    for (int r = 0; r < kRows; ++r) pull_step<P>(next + r * stride);
    StepRows& s = g.sc[step % 3];
    for (int r = 0; r < kRows; ++r) {
      const StepScales st = pair.scales(row + step * P::kStep + r * stride);
      _mm512_store_ps(s.dw[r], st.dw);
      if constexpr (P::kMins) _mm512_store_ps(s.mw[r], st.mw);
    }
  }
  const std::byte* at = row + step * P::kStep + P::pair_at(static_cast<int>(q % 8));
  for (int r = 0; r < kRows; ++r)
    _mm512_store_si512(g.wq[q % kLag][r], bytes(at + r * stride, static_cast<int>(q % 8)));
}

// Rows [row, row + 16) (`stride` bytes apart) × the batch: out[r][t] for the 8 token slots.
// Each pair of blocks goes through four stages a few pairs apart: unpack (stores), tile product
// issued (its loads read those stores), its sums stored a pair later, and scaling (reads them),
// so that no stage waits on the one before it: a tile load cannot take data from stores not yet
// written, and a tile store waits for its product.
template <class P, Form kForm>
void group_of_16(const P& pair, const std::byte* row, size_t stride, int64_t nb, const GemvActs& a,
                 float (*out)[kGemvMaxTokens]) {
  static_assert(kGemvMaxTokens == 8, "a zmm holds 8 tokens of two blocks");
  constexpr int64_t kIssue = 2, kStore = 3, kScale = 5;  // stage lags, in pairs
  static_assert(kScale < kLag && kScale < 8, "buffers and step scales outlive the lags");
  GroupBuffers g;
  const Unpack<P> bytes;
  const __m512i half = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  __m512 acc[kRows];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  const int64_t pairs = nb / 2;
  for (int64_t q = 0; q < pairs + kScale; ++q) {
    if (q < pairs) unpack(pair, bytes, row, stride, nb, q, g);
    if (const int64_t m = q - kIssue; m >= 0 && m < pairs) {
      const int8_t* x = a.tq + 1024 * m;
      tile_issue<kForm>(m, g.wq[m % kLag][0], 64, x, 64);
    }
    if (const int64_t m = q - kStore; m >= 0 && m < pairs) tile_store(m, g.c[m % kLag][0]);
    if (const int64_t m = q - kScale; m >= 0) {  // acc += the sums · dw·d (− mw·sum)
      // Lanes 0-7 block 2p, 8-15 block 2p + 1: the tokens' d (and sums), and each row's scales.
      const __m512 d = _mm512_loadu_ps(a.td + 16 * m);
      const __m512 sum = _mm512_loadu_ps(a.ts + 16 * m);
      const __m512i lanes = _mm512_add_epi32(_mm512_set1_epi32(2 * static_cast<int>(m % 8)), half);
      const StepRows& s = g.sc[m / 8 % 3];
      for (int r = 0; r < kRows; ++r) {
        const __m512 w = _mm512_mul_ps(_mm512_permutexvar_ps(lanes, _mm512_load_ps(s.dw[r])), d);
        acc[r] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(g.c[m % kLag][r])), w, acc[r]);
        if constexpr (P::kMins)
          acc[r] =
              _mm512_fnmadd_ps(_mm512_permutexvar_ps(lanes, _mm512_load_ps(s.mw[r])), sum, acc[r]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r)
    _mm256_storeu_ps(
        out[r], _mm256_add_ps(_mm512_castps512_ps256(acc[r]), _mm512_extractf32x8_ps(acc[r], 1)));
}

// Rows [r0, r1): groups of 16 at rows 16k .. 16k + 15 through the tiles, the rows around them
// through the AVX-512 kernel of the type (`rest`).
template <class P, Form kForm, GemvFn GemvKernels::*kRest>
void gemv(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  const GemvFn rest = gemv_kernels_avx512().*kRest;
  const int64_t g0 = std::min(r1, (r0 + kRows - 1) / kRows * kRows),
                g1 = g0 + (r1 - g0) / kRows * kRows;
  if (r0 < g0) rest(w, r0, g0, a, y, ldy);
  if (g0 < g1) {
    configure_gemv_tiles();
    const P pair;
    alignas(32) float out[kRows][kGemvMaxTokens];
    for (int64_t r = g0; r < g1; r += kRows) {
      group_of_16<P, kForm>(pair, w.row(r), w.row_bytes, w.cols / 32, a, out);
      for (int t = 0; t < a.n; ++t)
        for (int i = 0; i < kRows; ++i) y[t * ldy + r + i] = out[i][t];
    }
    _tile_release();
  }
  if (g1 < r1) rest(w, g1, r1, a, y, ldy);
}

}  // namespace

// Where they beat the VNNI kernels on matrices read from memory (bench/bench_kernels.cpp has
// the in-cache side): from 5 tokens (4 are even for Q4_0 and Q4_K; Q8_0's VNNI kernel, 21–25
// GB/s for 2 to 4 tokens, against 20 here); fewer tokens take the AVX-512 kernels. Q6_K, whose
// scales change every 16 columns, keeps its AVX-512 kernel.
const GemvKernels& gemv_kernels_amx() {
  static const GemvKernels k{"amx",
                             gemv<Q4_0Pair, Form::Signed, &GemvKernels::q4_0>,
                             gemv<Q8_0Pair, Form::Signed, &GemvKernels::q8_0>,
                             gemv<Q4_KPair, Form::Mins, &GemvKernels::q4_k>,
                             gemv_kernels_avx512().q6_k,
                             {5, kGemvMaxTokens},
                             {5, kGemvMaxTokens},
                             {5, kGemvMaxTokens},
                             gemv_kernels_avx512().q6_k_tokens,
                             kRows,
                             true,
                             &gemv_kernels_avx512()};
  return k;
}

}  // namespace smoe::cpu
