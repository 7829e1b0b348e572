// The scalar reference of the strip GEMM: activation quantization, repacking and the
// multiply-accumulate (per block: the integer dot of each half, scaled by weight scale ×
// activation scale, then the offsets times the activation sums; for types with a power-of-two
// code offset the offsets are folded into the integer dots instead, as the SIMD kernels do).
#include <cmath>
#include <cstring>

#include "kernels/cpu/strip.h"
#include "kernels/cpu/strip_decode.h"

namespace smoe::cpu {
namespace {

void quantize_act(const float* x, ActQ8* out, int64_t n) {
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    int32_t sum[2] = {0, 0};
    for (int j = 0; j < 32; ++j) {
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      out[i].qs[j] = static_cast<int8_t>(q);
      sum[j / 16] += q;
    }
    set_act_sums(out[i], d, sum[0], sum[1]);
  }
}

template <DType T>
void repack_t(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  repack_by_rows<T>(w, r0, nr, out, [](const uint8_t* const* rows, StripBlock& o) {
    for (int r = 0; r < kStripRows; ++r)
      for (int g = 0; g < 8; ++g) std::memcpy(o.q[g][r], rows[r] + 4 * g, 4);
  });
}

void repack(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  with_decoder(w.dtype, [&]<DType T>() { repack_t<T>(w, r0, nr, out); });
}

void gemm(const StripBlock* strips, int64_t nb, DType type, const ActQ8* a, int64_t a_stride,
          int64_t n, float* y, int64_t ldy, int nr, const StripPrefetch*) {
  const bool split = strip_split(type);
  const int shift = strip_code_shift(type);
  for (int64_t t = 0; t < n; ++t) {
    const ActQ8* at = a + t * a_stride;
    for (int row = 0; row < nr; ++row) {
      const StripBlock* s = strips + (row / kStripRows) * nb;
      const int r = row % kStripRows;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t isum[2] = {0, 0};
        for (int g = 0; g < 8; ++g)
          for (int j = 0; j < 4; ++j) isum[g / 4] += s[b].q[g][r][j] * at[b].qs[4 * g + j];
        if (shift >= 0) {  // offsets folded into the integer sums (see strip_code_shift)
          const int32_t i0 = isum[0] + at[b].ns[0] * (1 << shift);
          const int32_t i1 = isum[1] + at[b].ns[1] * (1 << shift);
          if (split) {
            acc += static_cast<float>(i0) * (s[b].scale[0][r] * at[b].d);
            acc += static_cast<float>(i1) * (s[b].scale[1][r] * at[b].d);
          } else {
            acc += static_cast<float>(i0 + i1) * (s[b].scale[0][r] * at[b].d);
          }
        } else if (split) {
          acc += static_cast<float>(isum[0]) * (s[b].scale[0][r] * at[b].d);
          acc += static_cast<float>(isum[1]) * (s[b].scale[1][r] * at[b].d);
          acc += s[b].offset[0][r] * at[b].s[0];
          acc += s[b].offset[1][r] * at[b].s[1];
        } else {
          acc += static_cast<float>(isum[0] + isum[1]) * (s[b].scale[0][r] * at[b].d);
          acc += s[b].offset[0][r] * at[b].sum;
        }
      }
      y[t * ldy + row] = acc;
    }
  }
}

}  // namespace

bool strip_supported(DType t) {
  return with_decoder(t, []<DType>() {});
}

const StripKernels& strip_kernels_scalar() {
  static const StripKernels k{"scalar", quantize_act, repack, gemm};
  return k;
}

}  // namespace smoe::cpu
