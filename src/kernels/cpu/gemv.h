// Small-batch integer matrix × vector products (decode, and batches of a few tokens) read the
// weights' storage blocks as they are: no strip repack, whose cost would not be shared by enough
// tokens. One weight row is unpacked once and multiplied with up to kGemvMaxTokens tokens.
//
// Activations come quantized per 32 columns (x ≈ d·q, q int8) in planar form, so that the kernel
// loads 64 activation bytes at once and 16 block scales at once. Weight types with this path
// store each block of 32 as w = dw·u − mw with u an unsigned byte: Q4_0 u ∈ [0, 15], mw = 8·dw;
// Q8_0 u = q + 128, mw = 128·dw; Q4_K u the nibble, dw = d·sc and mw = dmin·m of the block's
// sub-block. So a row's dot with token t is
//   Σ_b dw_b·d_b·Σ_j u_bj·q_bj − Σ_b mw_b·sum_b,   sum_b = d_b·Σ_j q_bj.
// Q6_K's scales change every 16 columns (w = d·sc_s·(u − 32), u ∈ [0, 63]); its integer dots
// start from −32 times the sums of 4 activations (sum4), so Σ_j (u − 32)·q is exact per lane.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/backend.h"

namespace smoe::cpu {

inline constexpr int kGemvMaxTokens = 8;

// Where the AVX-512 small-batch kernels prefetch the rows that come next (one step of four rows
// ahead while these multiply). Measured from memory (14336 × 4096 × 24 rows, 2 threads): on the
// Xeon into L2 (Q4_0 one token 23.3–25.2 GB/s against 21.6–22.2 into L1, two tokens 21.1–22.7
// against 19.7–19.9, Q8_0 one token 27–27.7 against 21.7–22.2: its few L1 miss buffers stay with
// the loads that wait on them); on the AMD EPYC (CPU family 26) into L1 (Mixtral-2L Q4_0 decode
// in alternating runs, see docs/performance.md).
enum class PullTo { L1, L2 };

// Token t's activations: qs + t·q_stride (cols int8 values), d + t·b_stride and
// sum + t·b_stride (cols/32 floats each), sum4 + t·q_stride / 4 (the integer sums of each 4
// consecutive q: the lanes of a vpdpbusd with weights all 1).
struct GemvActs {
  const int8_t* qs;
  const float* d;
  const float* sum;
  const int32_t* sum4;
  int64_t q_stride, b_stride;
  int n;  // tokens, 1 .. kGemvMaxTokens
  // The same activations as AMX tiles take them (gemv_pack_token; only for kernels that ask):
  // per pair of blocks (64 columns) a tile of 16 rows × 16 columns of 4 bytes at tq + 1024·p, row
  // g < 8 holding columns 4g .. 4g + 3 of block 2p for tokens 0 .. 7 in tile columns 0 .. 7, rows
  // g ≥ 8 those of block 2p + 1 in tile columns 8 .. 15, zeros elsewhere and past n; so one tile
  // product gives both blocks' sums apart. td + 16·p and ts + 16·p: the d and sum of block 2p
  // for the 8 tokens, then of block 2p + 1 (0 past n).
  const int8_t* tq = nullptr;
  const float* td = nullptr;
  const float* ts = nullptr;
};

// Bytes of tq for cols columns, floats of each of td and ts.
inline int64_t gemv_tile_bytes(int64_t cols) {
  return cols * 2 * kGemvMaxTokens;
}
inline int64_t gemv_tile_floats(int64_t cols) {
  return cols / 32 * kGemvMaxTokens;
}

// Token slot t's place in tq, td and ts (its tile columns t and 8 + t of every pair, data or
// zeros, and zeros for t ≥ a.n): the slots share no bytes, so they may be filled in parallel.
inline void gemv_pack_token(const GemvActs& a, int t, int8_t* tq, float* td, float* ts) {
  static_assert(kGemvMaxTokens == 8, "a tile row holds 8 tokens of two blocks");
  const bool on = t < a.n;
  for (int64_t b = 0; b < a.q_stride / 32; ++b) {
    int8_t* pair = tq + 1024 * (b / 2);
    int8_t* mine = pair + 512 * (b % 2) + 4 * (8 * (b % 2) + t);       // the block's rows
    int8_t* other = pair + 512 * (1 - b % 2) + 4 * (8 * (b % 2) + t);  // zeros there
    for (int g = 0; g < 8; ++g)
      for (int i = 0; i < 4; ++i) {
        mine[64 * g + i] = on ? a.qs[t * a.q_stride + 32 * b + 4 * g + i] : int8_t{0};
        other[64 * g + i] = 0;
      }
    td[8 * b + t] = on ? a.d[t * a.b_stride + b] : 0.0f;
    ts[8 * b + t] = on ? a.sum[t * a.b_stride + b] : 0.0f;
  }
}

// Whether a type's kernels read sum4 (only then does a caller need to fill it).
inline bool gemv_uses_sum4(DType t) {
  return t == DType::Q6_K;
}

// sum4 of n quantized activations q.
inline void gemv_sums_of_4(const int8_t* q, int64_t n, int32_t* sum4) {
  for (int64_t i = 0; i < n / 4; ++i)
    sum4[i] = q[4 * i] + q[4 * i + 1] + q[4 * i + 2] + q[4 * i + 3];
}

// y[t·ldy + r] = row r of w · token t, for rows [r0, r1).
using GemvFn = void (*)(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y,
                        int64_t ldy);

// Batch sizes [min, max] for which a kernel is the fastest path.
struct TokenRange {
  int min, max;
  bool has(int64_t n) const { return n >= min && n <= max; }
};

struct GemvKernels {
  const char* isa;
  GemvFn q4_0, q8_0, q4_k, q6_k;  // q4_k, q6_k: null where the instruction set has none
  // Where each kernel wins over the other paths on its instruction set: with AVX-512 from one
  // token on, up to 8 for Q4_0, Q4_K and Q6_K (3 to 8 through four-row tiles) and up to 4 for
  // Q8_0. From memory (14336 × 4096 × 24 rows, 2 threads, Xeon) one token reads Q8_0 at 24.8–27.6
  // GB/s against 21.3–25.0 through the per-row dot product, Q4_K 25.5–25.6 against 20.0–25.3,
  // Q6_K 24.4–24.8 against 20.7, and two tokens of Q6_K 21.2 against 17.5 for two dots; the
  // strip GEMM's repack of Q4_K from memory cost more than its multiplication for up to 8 tokens,
  // and for Q6_K 4096 × 4096, 3 tokens took 0.7 ms against 1.6–1.8 through it. With AVX2 (no VNNI,
  // one vpmaddubsw per 32 multiply-adds) Q4_0, Q4_K and Q6_K up to 8 tokens (eight-row tiles)
  // and Q8_0 up to 4 (row by row; from 5 the strip GEMM is faster): bench/bench_kernels.cpp
  // BM_MatmulMemory and gemv_avx2.cpp.
  TokenRange q4_0_tokens, q8_0_tokens, q4_k_tokens, q6_k_tokens;
  // Rows go to threads and calls in groups of this many, starting at multiples of it, so that a
  // kernel's tiles (4 rows with AVX-512, 16 with AMX, 8 with AVX2) always cover the same rows: a
  // row's result never depends on how the rows were split.
  int row_group = 4;
  // Whether the kernels read the tile layout of the activations (GemvActs::tq, td, ts).
  bool tiles = false;
  // The kernels for batch sizes outside these ranges (AMX's: AVX-512 VNNI's), or null.
  const GemvKernels* fewer = nullptr;
  // Q4_0 interleaved by eight (MatrixLayout::Rows8, kernels/layout.h), 1 to kGemvMaxTokens
  // tokens, or null where the instruction set reads only the file's layout.
  GemvFn q4_0_rows8 = nullptr;
  // The kernel for w and n tokens, or null where it has none or another path is faster. The
  // AVX-512 kernels take 16 blocks (512 columns) per step, the AVX2 ones 8; rows come in whole
  // 512-column steps for both.
  GemvFn for_matrix(const Matrix& w, int64_t n) const {
    if (w.cols % 512 != 0 || n < 1) return nullptr;
    if (w.layout == MatrixLayout::Rows8)
      return w.dtype == DType::Q4_0 && n <= kGemvMaxTokens ? q4_0_rows8 : nullptr;
    GemvFn f = nullptr;
    if (w.dtype == DType::Q4_0) f = q4_0_tokens.has(n) ? q4_0 : nullptr;
    if (w.dtype == DType::Q8_0) f = q8_0_tokens.has(n) ? q8_0 : nullptr;
    if (w.dtype == DType::Q4_K) f = q4_k_tokens.has(n) ? q4_k : nullptr;
    if (w.dtype == DType::Q6_K) f = q6_k_tokens.has(n) ? q6_k : nullptr;
    return f || !fewer ? f : fewer->for_matrix(w, n);
  }
  // Whether the kernel for w and n tokens reads the tile layout (one of this set's, not fewer's).
  bool reads_tiles(const Matrix& w, int64_t n) const {
    const GemvFn f = tiles ? for_matrix(w, n) : nullptr;
    return f && f != (fewer ? fewer->for_matrix(w, n) : nullptr);
  }
  // The kernel of type t in this set (each takes 1 to kGemvMaxTokens tokens), or null.
  GemvFn of_type(DType t) const {
    return t == DType::Q4_0   ? q4_0
           : t == DType::Q8_0 ? q8_0
           : t == DType::Q4_K ? q4_k
           : t == DType::Q6_K ? q6_k
                              : nullptr;
  }
};

// The scalar reference (defines the arithmetic), the AVX-512 VNNI, the AMX and the AVX2 kernels.
const GemvKernels& gemv_kernels_scalar();
const GemvKernels& gemv_kernels_avx512();  // pulling rows where this CPU reads them best
const GemvKernels& gemv_kernels_avx512(PullTo to);
const GemvKernels& gemv_kernels_amx();  // needs amx_usable() (float_kernels.h)
const GemvKernels& gemv_kernels_avx2();

}  // namespace smoe::cpu
