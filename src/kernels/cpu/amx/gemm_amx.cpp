// AMX tile GEMM (see tile_gemm.h). For each group of 16 weight rows and each step of 512 columns
// the rows are unpacked once into 16 × 512 int8 (as the small-batch kernels unpack them) with
// their 16 × 16 block scales; then every 16-token tile of the batch runs through the step's 16
// blocks: A tile (16 rows × 32 bytes of the block) times B tile (the block's 16 tokens), the sums
// stored and scaled in AVX-512 into 16 accumulators, one per row, whose lanes are the tokens.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/tile_gemm.h"

namespace smoe::cpu {
namespace {

constexpr int kRows = 16;       // weight rows per group: an A tile's rows
constexpr int kStepCols = 512;  // columns unpacked at a time (16 blocks)
constexpr int kMaxTiles = 32;   // token tiles whose accumulators one pass keeps (512 tokens)

// Tiles 0, 1: a block's sums (16 rows × 16 tokens); 2, 3: its weights (16 rows × 32 bytes); 4, 5:
// its activations (8 rows × 64 bytes). Even blocks take 0, 2, 4, odd ones 1, 3, 5, so that a
// block's product need not wait for the last one's sums to be stored.
void configure_gemm_tiles() {
  constexpr uint8_t rows[6] = {kRows, kRows, kRows, kRows, 8, 8};
  constexpr uint16_t colsb[6] = {64, 64, 32, 32, 64, 64};
  configure_tiles(6, rows, colsb);
}

// One step of 16 rows, unpacked: u[r] the row's 512 columns, dw[r] / mw[r] its 16 blocks' scales
// and offset coefficients (kMins only).
struct Step {
  alignas(64) int8_t u[kRows][kStepCols];
  alignas(64) float dw[kRows][16], mw[kRows][16];
};

template <class P>
void unpack_step(const P& pair, const Unpack<P>& bytes, const std::byte* base, size_t stride,
                 Step& s) {
  for (int r = 0; r < kRows; ++r) {
    const std::byte* row = base + r * stride;
    const StepScales sc = pair.scales(row);
    _mm512_store_ps(s.dw[r], sc.dw);
    if constexpr (P::kMins) _mm512_store_ps(s.mw[r], sc.mw);
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) _mm512_store_si512(s.u[r] + 64 * p, bytes(row + P::pair_at(p), p));
  }
}

// acc[r] (lanes: the tile's 16 tokens) += the 16 blocks of step s (blocks j0 .. j0 + 15 of the
// row) with token tile `tile`. The blocks go through issue, store (a block later) and scaling
// (two blocks later), so that no stage waits on the one before it.
template <class P, Form kForm>
void step_tile(const Step& s, const TileActs& a, int64_t tile, int64_t j0, __m512* acc) {
  alignas(64) int32_t c[4][kRows][16];
  tile_will_read<sizeof(s.u)>(s.u);
  const int64_t at = tile * a.nb + j0;  // the tile's first block of the step
  for (int q = 0; q < 16 + 2; ++q) {
    if (q < 16) {
      const int8_t* x = a.b + 512 * (at + q);
      tile_issue<kForm>(q, s.u[0] + 32 * q, kStepCols, x, 64);
    }
    if (const int m = q - 1; m >= 0 && m < 16) tile_store(m, c[m % 4][0]);
    if (const int m = q - 2; m >= 0) {
      const __m512 d = _mm512_loadu_ps(a.d + 16 * (at + m));
      const __m512 sum = _mm512_loadu_ps(a.sum + 16 * (at + m));
      for (int r = 0; r < kRows; ++r) {
        const __m512 w = _mm512_mul_ps(_mm512_set1_ps(s.dw[r][m]), d);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[m % 4][r])), w, acc[r]);
        if constexpr (P::kMins) acc[r] = _mm512_fnmadd_ps(_mm512_set1_ps(s.mw[r][m]), sum, acc[r]);
      }
    }
  }
}

// Rows [row, row + 16) × tokens [t0, t0 + 16·tiles) of the batch into y.
template <class P, Form kForm>
void group(const P& pair, const std::byte* row, size_t stride, const TileActs& a, int64_t t0,
           int64_t tiles, float* y, int64_t ldy) {
  alignas(64) float acc[kMaxTiles][kRows][16];
  std::fill_n(&acc[0][0][0], tiles * kRows * 16, 0.0f);
  Step s;
  const Unpack<P> bytes;
  for (int64_t j0 = 0; j0 < a.nb; j0 += 16) {
    const std::byte* base = row + j0 / 16 * P::kStep;
    unpack_step(pair, bytes, base, stride, s);
    for (int r = 0; r < kRows; ++r) pull_step<P>(base + P::kStep + r * stride);  // the next step
    for (int64_t t = 0; t < tiles; ++t) {
      __m512 v[kRows];
      for (int r = 0; r < kRows; ++r) v[r] = _mm512_load_ps(acc[t][r]);
      step_tile<P, kForm>(s, a, t0 / kTileTokens + t, j0, v);
      for (int r = 0; r < kRows; ++r) _mm512_store_ps(acc[t][r], v[r]);
    }
  }
  for (int64_t t = 0; t < tiles; ++t)
    for (int i = 0; i < kTileTokens; ++i) {
      const int64_t tok = t0 + t * kTileTokens + i;
      if (tok >= a.n) break;
      for (int r = 0; r < kRows; ++r) y[tok * ldy + r] = acc[t][r][i];
    }
}

template <class P, Form kForm>
void gemm(const Matrix& w, int64_t r0, int64_t r1, const TileActs& a, float* y, int64_t ldy) {
  configure_gemm_tiles();
  const P pair;
  const int64_t tiles = tile_act_tiles(a.n);
  for (int64_t r = r0; r < r1; r += kRows)
    for (int64_t t = 0; t < tiles; t += kMaxTiles)  // tokens past 512: the rows again
      group<P, kForm>(pair, w.row(r), w.row_bytes, a, t * kTileTokens,
                      std::min<int64_t>(kMaxTiles, tiles - t), y + r, ldy);
  _tile_release();
}

}  // namespace

const TileGemmKernels& tile_gemm_kernels_amx() {
  static const TileGemmKernels k{gemm<Q4_0Pair, Form::Signed>, gemm<Q8_0Pair, Form::Signed>,
                                 gemm<Q4_KPair, Form::Mins>};
  return k;
}

}  // namespace smoe::cpu
