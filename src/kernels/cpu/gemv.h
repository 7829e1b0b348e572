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
};

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
  // Where each kernel wins over the other paths on its instruction set: with AVX-512 up to 8
  // tokens for Q4_0 (3 to 8 through four-row tiles, measured on matrices read from memory), 2 to
  // 4 for Q8_0, 2 to 8 for Q4_K (one token is as fast or faster with the per-row dot product;
  // the strip GEMM's repack of Q4_K from memory cost more than its multiplication for up to 8
  // tokens) and 3 to 8 for Q6_K (2 tokens are even with two dot products; 4096 × 4096, 3 tokens
  // 0.7 ms against 1.6–1.8 through the strip GEMM, 8 tokens even with it while the matrix stays
  // in cache, and no repack from memory); with AVX2 1 to 2 tokens of Q4_0 and Q8_0, the strip
  // GEMM taking over from 3 (bench/bench_kernels.cpp).
  TokenRange q4_0_tokens, q8_0_tokens, q4_k_tokens, q6_k_tokens;
  // The kernel for w and n tokens, or null where it has none or another path is faster. The
  // AVX-512 kernels take 16 blocks (512 columns) per step, the AVX2 ones 8; rows come in whole
  // 512-column steps for both.
  GemvFn for_matrix(const Matrix& w, int64_t n) const {
    if (w.cols % 512 != 0 || n < 1) return nullptr;
    if (w.dtype == DType::Q4_0) return q4_0_tokens.has(n) ? q4_0 : nullptr;
    if (w.dtype == DType::Q8_0) return q8_0_tokens.has(n) ? q8_0 : nullptr;
    if (w.dtype == DType::Q4_K) return q4_k_tokens.has(n) ? q4_k : nullptr;
    if (w.dtype == DType::Q6_K) return q6_k_tokens.has(n) ? q6_k : nullptr;
    return nullptr;
  }
};

// The scalar reference (defines the arithmetic), the AVX-512 VNNI and the AVX2 kernels.
const GemvKernels& gemv_kernels_scalar();
const GemvKernels& gemv_kernels_avx512();
const GemvKernels& gemv_kernels_avx2();

}  // namespace smoe::cpu
