// The tile GEMM for quantized weights in pre-fill and batches past the small-batch kernels (AMX):
// 16 weight rows at a time are unpacked once per 512 columns into int8 rows, and every 16 tokens
// of the batch meet them in one tile product per 32-column block; each block's 16 × 16 integer
// sums are scaled in AVX-512 by dw·d (and, for Q4_K, less mw·sum), as gemv.h defines them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/backend.h"
#include "kernels/cpu/strip.h"

namespace smoe::cpu {

inline constexpr int kTileTokens = 16;  // tokens per activation tile

// The batch's activations as tiles: for 16-token tile T and block j (of nb), at
// b + 512·(T·nb + j) the 8 rows of a B tile, row g holding columns 4g .. 4g + 3 of the 16
// tokens in turn (4 bytes each; zeros past n), and at d + 16·(T·nb + j), sum + 16·(T·nb + j) the
// 16 tokens' d and sum of the block (0 past n).
struct TileActs {
  const int8_t* b;
  const float* d;
  const float* sum;
  int64_t nb, n;
};

inline int64_t tile_act_tiles(int64_t n) {
  return (n + kTileTokens - 1) / kTileTokens;
}
// Bytes of TileActs::b for n tokens of cols columns, floats of each of d and sum.
inline int64_t tile_act_bytes(int64_t n, int64_t cols) {
  return tile_act_tiles(n) * kTileTokens * cols;
}
inline int64_t tile_act_floats(int64_t n, int64_t cols) {
  return tile_act_tiles(n) * kTileTokens * (cols / 32);
}

// Token t's quantized blocks act[0 .. nb) (or zeros, for t ≥ n: the last tile's padding) into its
// place in the tiles.
inline void tile_pack_token(const ActQ8* act, int64_t t, int64_t n, int64_t nb, int8_t* b, float* d,
                            float* sum) {
  const int64_t tile = t / kTileTokens, col = t % kTileTokens;
  for (int64_t j = 0; j < nb; ++j) {
    const int64_t at = tile * nb + j;
    int8_t* rows = b + 512 * at + 4 * col;
    for (int g = 0; g < 8; ++g)
      for (int i = 0; i < 4; ++i) rows[64 * g + i] = t < n ? act[j].qs[4 * g + i] : int8_t{0};
    d[16 * at + col] = t < n ? act[j].d : 0.0f;
    sum[16 * at + col] = t < n ? act[j].sum : 0.0f;
  }
}

// y[t·ldy + r] = row r of w · token t for every token, rows [r0, r1) (multiples of 16).
using TileGemmFn = void (*)(const Matrix& w, int64_t r0, int64_t r1, const TileActs& a, float* y,
                            int64_t ldy);

struct TileGemmKernels {
  TileGemmFn q4_0, q8_0, q4_k;
  // The kernel for w, or null: rows must come in whole tiles (16), columns in 512s.
  TileGemmFn for_matrix(const Matrix& w) const {
    if (w.rows % 16 != 0 || w.cols % 512 != 0) return nullptr;
    return w.dtype == DType::Q4_0   ? q4_0
           : w.dtype == DType::Q8_0 ? q8_0
           : w.dtype == DType::Q4_K ? q4_k
                                    : nullptr;
  }
};

// Needs amx_usable() (float_kernels.h).
const TileGemmKernels& tile_gemm_kernels_amx();

}  // namespace smoe::cpu
