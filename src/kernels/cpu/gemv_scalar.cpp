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

// y[t·ldy + r] = dot(r, t, token t's q, token t's d) for every row and token.
template <class Dot>
void each_row_and_token(int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy, Dot dot) {
  for (int64_t r = r0; r < r1; ++r)
    for (int t = 0; t < a.n; ++t)
      y[t * ldy + r] = dot(r, t, a.qs + t * a.q_stride, a.d + t * a.b_stride);
}

template <class U>
void gemv(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  const int64_t nb = w.cols / 32;
  each_row_and_token(r0, r1, a, y, ldy, [&](int64_t r, int t, const int8_t* q, const float* d) {
    const float* sum = a.sum + t * a.b_stride;
    int32_t u[32];
    float acc = 0, off = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const Scales sc = U::block(w.row(r), b, u);
      int32_t isum = 0;
      for (int j = 0; j < 32; ++j) isum += u[j] * q[32 * b + j];
      acc += static_cast<float>(isum) * (sc.dw * d[b]);
      off += sc.mw * sum[b];
    }
    return acc - off;
  });
}

// Q6_K: column c of a super-block is u = low 4 bits | high 2 bits << 4 (ql, qh as llama.cpp lays
// them out), with the scale of its 16 columns, sc[c / 16]; the integer dot per 16 columns is of
// u − 32, scaled by d·sc·d_b.
void gemv_q6_k(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  const int64_t nsb = w.cols / 256;
  each_row_and_token(r0, r1, a, y, ldy, [&](int64_t r, int, const int8_t* q, const float* d) {
    int32_t u[256];
    float acc = 0;
    for (int64_t i = 0; i < nsb; ++i) {
      const auto& b = reinterpret_cast<const quant::BlockQ6_K*>(w.row(r))[i];
      for (int c = 0; c < 256; ++c) {
        const int h = c / 128, k = c % 128, l = k % 32, g = k / 32;  // g: which of q1..q4
        const int low = (b.ql[64 * h + l + 32 * (g % 2)] >> (4 * (g / 2))) & 0xF;
        u[c] = low | (((b.qh[32 * h + l] >> (2 * g)) & 3) << 4);
      }
      for (int s = 0; s < 16; ++s) {
        int32_t isum = 0;
        for (int j = 0; j < 16; ++j) isum += (u[16 * s + j] - 32) * q[256 * i + 16 * s + j];
        acc += static_cast<float>(isum) * (f16_to_f32(b.d) * b.scales[s] * d[8 * i + s / 2]);
      }
    }
    return acc;
  });
}

}  // namespace

const GemvKernels& gemv_kernels_scalar() {
  constexpr TokenRange kAll{1, kGemvMaxTokens};
  static const GemvKernels k{"scalar",
                             gemv<Q4_0Unsigned>,
                             gemv<Q8_0Unsigned>,
                             gemv<Q4_KUnsigned>,
                             gemv_q6_k,
                             kAll,
                             kAll,
                             kAll,
                             kAll};
  return k;
}

}  // namespace smoe::cpu
