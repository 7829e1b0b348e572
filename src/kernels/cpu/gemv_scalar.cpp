// The scalar reference of the small-batch kernels (see gemv.h): per block the integer dot of the
// unsigned weight bytes with the int8 activations, scaled by dw·d, and the offset term apart.
// block(row, b, u) unpacks block b of a row into u and returns its dw and mw.
#include "core/fp16.h"
#include "kernels/cpu/gemv.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

struct Scales {
  float dw, mw;
};

struct Q4_0Unsigned {
  static Scales block(const std::byte* row, int64_t b, int32_t* u) {
    const auto& q = reinterpret_cast<const quant::BlockQ4_0*>(row)[b];
    for (int j = 0; j < 16; ++j) {
      u[j] = q.qs[j] & 0xF;
      u[j + 16] = q.qs[j] >> 4;
    }
    const float d = f16_to_f32(q.d);
    return {d, 8 * d};
  }
};

struct Q8_0Unsigned {
  static Scales block(const std::byte* row, int64_t b, int32_t* u) {
    const auto& q = reinterpret_cast<const quant::BlockQ8_0*>(row)[b];
    for (int j = 0; j < 32; ++j) u[j] = q.qs[j] + 128;
    const float d = f16_to_f32(q.d);
    return {d, 128 * d};
  }
};

// Sub-block s = b mod 8 of super-block b / 8: nibbles of bytes 32·(s / 2) .. + 31, low for even s.
struct Q4_KUnsigned {
  static Scales block(const std::byte* row, int64_t b, int32_t* u) {
    const auto& q = reinterpret_cast<const quant::BlockQ4_K*>(row)[b / 8];
    const int s = static_cast<int>(b % 8);
    for (int j = 0; j < 32; ++j) u[j] = (q.qs[32 * (s / 2) + j] >> (4 * (s % 2))) & 0xF;
    uint8_t sc = 0, m = 0;
    quant::k4_scale_min(s, q.scales, sc, m);
    return {f16_to_f32(q.d) * sc, f16_to_f32(q.dmin) * m};
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
        const Scales sc = U::block(w.row(r), b, u);
        int32_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += u[j] * q[32 * b + j];
        acc += static_cast<float>(isum) * (sc.dw * d[b]);
        off += sc.mw * sum[b];
      }
      y[t * ldy + r] = acc - off;
    }
}

}  // namespace

const GemvKernels& gemv_kernels_scalar() {
  static const GemvKernels k{"scalar",           gemv<Q4_0Unsigned>,  gemv<Q8_0Unsigned>,
                             gemv<Q4_KUnsigned>, {1, kGemvMaxTokens}, {1, kGemvMaxTokens},
                             {1, kGemvMaxTokens}};
  return k;
}

}  // namespace smoe::cpu
