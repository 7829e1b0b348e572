// The strip GEMM for quantized weights in pre-fill and batches: 16 weight rows are unpacked
// ("repacked") on the fly into a row-interleaved layout, so that one 512-bit register holds four
// consecutive weights of each of the 16 rows. A broadcast of four activation bytes then feeds a
// multiply-add whose 16 lanes are the 16 rows' partial dot products: the per-block float scales
// of the weights become vectors over rows, and the cost of the unpacking is shared by every token
// of the batch.
//
// Canonical form of every weight type: 32-column blocks, w = scale·q + offset with q an unsigned
// byte, and scale/offset per 16-column half (the two halves are equal for types whose scales
// cover 32 columns; "split" types, Q2_K, Q3_K and Q6_K, have scales per 16).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/backend.h"

namespace smoe::cpu {

inline constexpr int kStripRows = 16;

// 32 columns of a strip of 16 rows: q[g][r][j] is column 4g + j of row r.
struct alignas(64) StripBlock {
  uint8_t q[8][kStripRows][4];
  float scale[2][kStripRows];   // by half, by row
  float offset[2][kStripRows];  // by half, by row
};
static_assert(sizeof(StripBlock) == 768);

// 32 activations as int8: x ≈ d·q; s[h] = d·Σq over half h, sum = s[0] + s[1]; the same sums
// negated and exact: ns[h] = −Σq over half h, nsum = ns[0] + ns[1].
struct ActQ8 {
  float d;
  float sum;
  float s[2];
  int8_t qs[32];
  int32_t nsum;
  int32_t ns[2];
  int32_t pad;  // 0
};
static_assert(sizeof(ActQ8) == 64);

// Everything of a quantized block but its bytes: scale d, integer sums s0, s1 of its halves.
inline void set_act_sums(ActQ8& a, float d, int32_t s0, int32_t s1) {
  a.d = d;
  a.s[0] = d * static_cast<float>(s0);
  a.s[1] = d * static_cast<float>(s1);
  a.sum = d * static_cast<float>(s0 + s1);
  a.ns[0] = -s0;
  a.ns[1] = -s1;
  a.nsum = -(s0 + s1);
  a.pad = 0;
}

// Whether a weight type has a strip form, and whether its halves have their own scales.
bool strip_supported(DType t);
constexpr bool strip_split(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q6_K;
}

// Types whose weights are scale·(q − c) with c = 2^k: the strip's offsets are −c·scale, and a
// kernel may fold them into the integer sums instead, Σ(q − c)·x = Σq·x + (ns << k), exactly.
// k for those types, −1 for the others (offsets of their own).
constexpr int strip_code_shift(DType t) {
  switch (t) {
    case DType::Q3_K:
      return 2;  // c = 4
    case DType::Q4_0:
      return 3;  // 8
    case DType::Q5_0:
      return 4;  // 16
    case DType::Q6_K:
      return 5;  // 32
    case DType::Q8_0:
      return 7;  // 128 (q stored as q + 128)
    default:
      return -1;
  }
}

// n (a multiple of 32) floats → n/32 blocks: d = amax/127, q = round-half-even(x/d).
using QuantizeActFn = void (*)(const float* x, ActQ8* out, int64_t n);
// Rows [r0, r0 + nr) of w (nr ≤ 16) → w.cols/32 strip blocks; rows past nr are zero.
using RepackFn = void (*)(const Matrix& w, int64_t r0, int nr, StripBlock* out);
// Weight rows to pull towards the cache while a GEMM computes (the next strip's), so that memory
// reads overlap the arithmetic: `rows` rows of `row_bytes` bytes, `stride` apart.
struct StripPrefetch {
  const std::byte* first = nullptr;
  size_t stride = 0;
  size_t row_bytes = 0;
  int rows = 0;
};

// One GEMM call covers up to two strips (32 rows), so that fast kernels can share each activation
// load between them: rows 16 .. 31 are those of the strip whose blocks follow at s + nb.
inline constexpr int kGemmRows = 2 * kStripRows;

// y[t·ldy + r] = Σ_c w[r][c]·x_t[c] for n tokens (activation blocks of token t at a + t·a_stride)
// and rows r < nr ≤ kGemmRows of strips repacked from weights of `type`. `pf` (may be null) is
// only a hint.
using StripGemmFn = void (*)(const StripBlock* s, int64_t nb, DType type, const ActQ8* a,
                             int64_t a_stride, int64_t n, float* y, int64_t ldy, int nr,
                             const StripPrefetch* pf);

struct StripKernels {
  const char* isa;
  QuantizeActFn quantize;
  RepackFn repack;
  StripGemmFn gemm;
};

// The scalar reference (defines the arithmetic), the AVX-512 VNNI and the AVX2 kernels.
const StripKernels& strip_kernels_scalar();
const StripKernels& strip_kernels_avx512();
const StripKernels& strip_kernels_avx2();

}  // namespace smoe::cpu
