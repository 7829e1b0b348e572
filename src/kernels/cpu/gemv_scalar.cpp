// The scalar reference of the small-batch kernels (see gemv.h): per block the integer dot of the
// unsigned weight bytes with the int8 activations, scaled by dw·d, and the offset term apart.
#include "core/fp16.h"
#include "kernels/cpu/gemv.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

// Unsigned weight bytes u[32] and scale of block b of a row; returns the constant c.
struct Q4_0Unsigned {
  static constexpr int kC = 8;
  static float block(const std::byte* row, int64_t b, int32_t* u) {
    const auto& q = reinterpret_cast<const quant::BlockQ4_0*>(row)[b];
    for (int j = 0; j < 16; ++j) {
      u[j] = q.qs[j] & 0xF;
      u[j + 16] = q.qs[j] >> 4;
    }
    return f16_to_f32(q.d);
  }
};

struct Q8_0Unsigned {
  static constexpr int kC = 128;
  static float block(const std::byte* row, int64_t b, int32_t* u) {
    const auto& q = reinterpret_cast<const quant::BlockQ8_0*>(row)[b];
    for (int j = 0; j < 32; ++j) u[j] = q.qs[j] + 128;
    return f16_to_f32(q.d);
  }
};

template <class U>
void gemv(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  const int64_t nb = w.cols / 32;
  int32_t u[32];
  for (int64_t r = r0; r < r1; ++r)
    for (int t = 0; t < a.n; ++t) {
      const int8_t* q = a.qs + t * a.q_stride;
      const float *d = a.d + t * a.b_stride, *sum = a.sum + t * a.b_stride;
      float acc = 0, off = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const float dw = U::block(w.row(r), b, u);
        int32_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += u[j] * q[32 * b + j];
        acc += static_cast<float>(isum) * (dw * d[b]);
        off += dw * sum[b];
      }
      y[t * ldy + r] = acc - static_cast<float>(U::kC) * off;
    }
}

}  // namespace

const GemvKernels& gemv_kernels_scalar() {
  static const GemvKernels k{
      "scalar", gemv<Q4_0Unsigned>, gemv<Q8_0Unsigned>, {1, kGemvMaxTokens}, {1, kGemvMaxTokens}};
  return k;
}

}  // namespace smoe::cpu
