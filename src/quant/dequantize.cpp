#include "quant/dequantize.h"

#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"

namespace smoe::quant {
namespace {

float h(uint16_t v) {
  return f16_to_f32(v);
}

void q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * ((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
    }
  }
}

void q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h(b[i].d), m = h(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * (b[i].qs[j] & 0xF) + m;
      y[j + 16] = d * (b[i].qs[j] >> 4) + m;
    }
  }
}

template <typename B>
void q5(const B* b, float* y, int64_t nb, bool with_min) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    const float d = h(b[i].d);
    float m = 0.0f;
    if constexpr (sizeof(B) == sizeof(BlockQ5_1)) m = h(b[i].m);
    const int off = with_min ? 0 : 16;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (b[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int x1 = (b[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = d * (x0 - off) + m;
      y[j + 16] = d * (x1 - off) + m;
    }
  }
}

void q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = d * b[i].qs[j];
  }
}

void q2_k(const BlockQ2_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h(b[i].d), dmin = h(b[i].dmin);
    const uint8_t* q = b[i].qs;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2)
        for (int part = 0; part < 2; ++part) {  // 16 weights each
          const uint8_t sc = b[i].scales[is++];
          const float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16 * part] >> shift) & 3) - ml;
        }
  }
}

// The 16 signed 6-bit scales of a Q3_K block (stored biased by 32 in 12 bytes).
void q3_k_scales(const uint8_t* s, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

void q3_k(const BlockQ3_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h(b[i].d);
    int8_t sc[16];
    q3_k_scales(b[i].scales, sc);
    const uint8_t* q = b[i].qs;
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32)
      for (int shift = 0; shift < 8; shift += 2, m <<= 1)
        for (int part = 0; part < 2; ++part) {
          const float dl = d * sc[is++];
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            const int hbit = (b[i].hmask[k] & m) ? 0 : 4;
            *y++ = dl * (((q[k] >> shift) & 3) - hbit);
          }
        }
  }
}

void q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h(b[i].d), dmin = h(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t s0, m0, s1, m1;
      k4_scale_min(j, b[i].scales, s0, m0);
      k4_scale_min(j + 1, b[i].scales, s1, m1);
      for (int l = 0; l < 32; ++l) *y++ = d * s0 * (q[l] & 0xF) - dmin * m0;
      for (int l = 0; l < 32; ++l) *y++ = d * s1 * (q[l] >> 4) - dmin * m1;
    }
  }
}

void q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h(b[i].d), dmin = h(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t s0, m0, s1, m1;
      k4_scale_min(j, b[i].scales, s0, m0);
      k4_scale_min(j + 1, b[i].scales, s1, m1);
      for (int l = 0; l < 32; ++l)
        *y++ = d * s0 * ((q[l] & 0xF) + (((b[i].qh[l] >> j) & 1) << 4)) - dmin * m0;
      for (int l = 0; l < 32; ++l)
        *y++ = d * s1 * ((q[l] >> 4) + (((b[i].qh[l] >> (j + 1)) & 1) << 4)) - dmin * m1;
    }
  }
}

void q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int n = 0; n < 2; ++n, y += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
  }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  const int64_t bs = dtype_info(t).block_size;
  if (n % bs != 0) fail("{} rows must be whole blocks of {} values; got {}", dtype_name(t), bs, n);
  const int64_t nb = n / bs;
  switch (t) {
    case DType::F32:
      std::memcpy(y, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
    case DType::BF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        y[i] = t == DType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
      }
      return;
    }
    case DType::Q4_0:
      return q4_0(static_cast<const BlockQ4_0*>(src), y, nb);
    case DType::Q4_1:
      return q4_1(static_cast<const BlockQ4_1*>(src), y, nb);
    case DType::Q5_0:
      return q5(static_cast<const BlockQ5_0*>(src), y, nb, false);
    case DType::Q5_1:
      return q5(static_cast<const BlockQ5_1*>(src), y, nb, true);
    case DType::Q8_0:
      return q8_0(static_cast<const BlockQ8_0*>(src), y, nb);
    case DType::Q2_K:
      return q2_k(static_cast<const BlockQ2_K*>(src), y, nb);
    case DType::Q3_K:
      return q3_k(static_cast<const BlockQ3_K*>(src), y, nb);
    case DType::Q4_K:
      return q4_k(static_cast<const BlockQ4_K*>(src), y, nb);
    case DType::Q5_K:
      return q5_k(static_cast<const BlockQ5_K*>(src), y, nb);
    case DType::Q6_K:
      return q6_k(static_cast<const BlockQ6_K*>(src), y, nb);
    default:
      fail("no dequantizer for {} weights", dtype_name(t));
  }
}

}  // namespace smoe::quant
