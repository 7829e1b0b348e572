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

// 32 activations as int8: x ≈ d·q; s[h] = d·Σq over half h, sum = s[0] + s[1].
struct ActQ8 {
  float d;
  float sum;
  float s[2];
  int8_t qs[32];
};
static_assert(sizeof(ActQ8) == 48);

// Whether a weight type has a strip form, and whether its halves have their own scales.
bool strip_supported(DType t);
bool strip_split(DType t);

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
