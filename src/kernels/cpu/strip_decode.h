// Per-type decoders of one storage block into the strip's canonical form (see strip.h):
// unsigned bytes q[32] per 32-column sub-block with scale and offset per 16-column half.
// Header-only with internal linkage, so each ISA's translation unit compiles its own copy with
// its own flags. scale·q + offset equals the reference dequantizer's value up to float rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/fp16.h"
#include "kernels/backend.h"
#include "kernels/cpu/strip.h"
#include "kernels/layout.h"
#include "quant/blocks.h"

namespace smoe::cpu {
namespace {

struct Decoded {
  uint8_t q[32];
  float scale[2];
  float offset[2];
};

inline void set_sub(Decoded& o, float scale, float offset) {
  o.scale[0] = o.scale[1] = scale;
  o.offset[0] = o.offset[1] = offset;
}

template <DType T>
struct Decoder;

template <>
struct Decoder<DType::Q4_0> {  // w = d·(q − 8)
  static constexpr int kSub = 1;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ4_0*>(src);
    for (int j = 0; j < 16; ++j) {
      o->q[j] = b.qs[j] & 0xF;
      o->q[j + 16] = b.qs[j] >> 4;
    }
    const float d = f16_to_f32(b.d);
    set_sub(*o, d, -8.0f * d);
  }
};

template <>
struct Decoder<DType::Q4_1> {  // w = d·q + m
  static constexpr int kSub = 1;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ4_1*>(src);
    for (int j = 0; j < 16; ++j) {
      o->q[j] = b.qs[j] & 0xF;
      o->q[j + 16] = b.qs[j] >> 4;
    }
    set_sub(*o, f16_to_f32(b.d), f16_to_f32(b.m));
  }
};

template <typename B>
void decode_q5(const B& b, Decoded* o) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  for (int j = 0; j < 16; ++j) {
    o->q[j] = static_cast<uint8_t>((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4));
    o->q[j + 16] = static_cast<uint8_t>((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
  }
}

template <>
struct Decoder<DType::Q5_0> {  // w = d·(q − 16)
  static constexpr int kSub = 1;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ5_0*>(src);
    decode_q5(b, o);
    const float d = f16_to_f32(b.d);
    set_sub(*o, d, -16.0f * d);
  }
};

template <>
struct Decoder<DType::Q5_1> {  // w = d·q + m
  static constexpr int kSub = 1;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ5_1*>(src);
    decode_q5(b, o);
    set_sub(*o, f16_to_f32(b.d), f16_to_f32(b.m));
  }
};

template <>
struct Decoder<DType::Q8_0> {  // w = d·q, q signed: stored as q + 128 with offset −128·d
  static constexpr int kSub = 1;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ8_0*>(src);
    for (int j = 0; j < 32; ++j) o->q[j] = static_cast<uint8_t>(b.qs[j] ^ 0x80);
    const float d = f16_to_f32(b.d);
    set_sub(*o, d, -128.0f * d);
  }
};

template <>
struct Decoder<DType::Q2_K> {  // 16 sub-blocks of 16: w = d·(sc & 15)·q − dmin·(sc >> 4)
  static constexpr int kSub = 8;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ2_K*>(src);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    int is = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, ++o)
        for (int part = 0; part < 2; ++part, ++is) {
          for (int l = 0; l < 16; ++l)
            o->q[16 * part + l] = static_cast<uint8_t>((q[l + 16 * part] >> shift) & 3);
          o->scale[part] = d * static_cast<float>(b.scales[is] & 0xF);
          o->offset[part] = -(dmin * static_cast<float>(b.scales[is] >> 4));
        }
    }
  }
};

template <>
struct Decoder<DType::Q3_K> {  // 16 sub-blocks of 16: w = d·sc·(u − 4), u = q | hbit << 2
  static constexpr int kSub = 8;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ3_K*>(src);
    const float d = f16_to_f32(b.d);
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = b.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1), ++o)
        for (int part = 0; part < 2; ++part, ++is) {
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            const int hbit = (b.hmask[k] & m) ? 4 : 0;
            o->q[16 * part + l] = static_cast<uint8_t>(((q[k] >> shift) & 3) | hbit);
          }
          const int low = is < 8 ? (b.scales[is] & 0xF) : (b.scales[is - 8] >> 4);
          const int high = (b.scales[8 + is % 4] >> (2 * (is / 4))) & 3;
          const float dl = d * static_cast<float>((low | (high << 4)) - 32);
          o->scale[part] = dl;
          o->offset[part] = -4.0f * dl;
        }
    }
  }
};

template <>
struct Decoder<DType::Q4_K> {  // 8 sub-blocks of 32: w = d·sc·q − dmin·m
  static constexpr int kSub = 8;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ4_K*>(src);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; j += 2, o += 2) {
      const uint8_t* q = b.qs + 16 * j;
      for (int l = 0; l < 32; ++l) {
        o[0].q[l] = q[l] & 0xF;
        o[1].q[l] = q[l] >> 4;
      }
      for (int k = 0; k < 2; ++k) {
        uint8_t sc, mn;
        quant::k4_scale_min(j + k, b.scales, sc, mn);
        set_sub(o[k], d * static_cast<float>(sc), -(dmin * static_cast<float>(mn)));
      }
    }
  }
};

template <>
struct Decoder<DType::Q5_K> {  // as Q4_K with a fifth bit from qh
  static constexpr int kSub = 8;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ5_K*>(src);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; j += 2, o += 2) {
      const uint8_t* q = b.qs + 16 * j;
      for (int l = 0; l < 32; ++l) {
        o[0].q[l] = static_cast<uint8_t>((q[l] & 0xF) | (((b.qh[l] >> j) & 1) << 4));
        o[1].q[l] = static_cast<uint8_t>((q[l] >> 4) | (((b.qh[l] >> (j + 1)) & 1) << 4));
      }
      for (int k = 0; k < 2; ++k) {
        uint8_t sc, mn;
        quant::k4_scale_min(j + k, b.scales, sc, mn);
        set_sub(o[k], d * static_cast<float>(sc), -(dmin * static_cast<float>(mn)));
      }
    }
  }
};

template <>
struct Decoder<DType::Q6_K> {  // 16 sub-blocks of 16: w = d·sc·(q − 32)
  static constexpr int kSub = 8;
  static void run(const void* src, Decoded* o) {
    const auto& b = *static_cast<const quant::BlockQ6_K*>(src);
    const float d = f16_to_f32(b.d);
    for (int n = 0; n < 2; ++n) {  // 128 weights: sub-blocks 4n .. 4n+3 of 32
      const uint8_t* ql = b.ql + 64 * n;
      const uint8_t* qh = b.qh + 32 * n;
      Decoded* oo = o + 4 * n;
      for (int l = 0; l < 32; ++l) {
        oo[0].q[l] = static_cast<uint8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
        oo[1].q[l] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        oo[2].q[l] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        oo[3].q[l] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
      for (int k = 0; k < 4; ++k)
        for (int h = 0; h < 2; ++h) {
          const float dl = d * static_cast<float>(b.scales[8 * n + 2 * k + h]);
          oo[k].scale[h] = dl;
          oo[k].offset[h] = -32.0f * dl;
        }
    }
  }
};

// Decodes storage block `sb` of rows [r0, r0 + nr) into out[r][0 .. kSub); rows past nr are
// zero (scale and offset 0, so they contribute nothing).
template <DType T>
void decode_rows(const Matrix& w, int64_t r0, int nr, int64_t sb,
                 Decoded (*out)[Decoder<T>::kSub]) {
  const size_t bytes = static_cast<size_t>(dtype_info(T).block_bytes);
  if (T == DType::Q4_0 && w.layout == MatrixLayout::Rows8) {  // the block put back together
    for (int r = 0; r < nr; ++r) {
      const quant::BlockQ4_0 b = rows8_block(w, r0 + r, sb);
      Decoder<DType::Q4_0>::run(&b, out[r]);
    }
  } else {
    for (int r = 0; r < nr; ++r) Decoder<T>::run(w.row(r0 + r) + sb * bytes, out[r]);
  }
  for (int r = nr; r < 16; ++r) std::memset(out[r], 0, sizeof(out[r]));
}

// Repacks rows [r0, r0 + nr) of w into strip blocks by decoding each row: scales and offsets are
// copied here, and place_q(rows, block) lays out the 16 rows' 32 bytes (rows[r] → block.q).
template <DType T, typename PlaceQ>
void repack_by_rows(const Matrix& w, int64_t r0, int nr, StripBlock* out, PlaceQ&& place_q) {
  constexpr int kSub = Decoder<T>::kSub;
  Decoded dec[kStripRows][kSub];
  const int64_t n_sb = w.cols / (32 * kSub);
  for (int64_t sb = 0; sb < n_sb; ++sb) {
    decode_rows<T>(w, r0, nr, sb, dec);
    for (int k = 0; k < kSub; ++k) {
      StripBlock& o = out[sb * kSub + k];
      const uint8_t* rows[kStripRows];
      for (int r = 0; r < kStripRows; ++r) {
        rows[r] = dec[r][k].q;
        for (int h = 0; h < 2; ++h) {
          o.scale[h][r] = dec[r][k].scale[h];
          o.offset[h][r] = dec[r][k].offset[h];
        }
      }
      place_q(rows, o);
    }
  }
}

// Calls fn.template operator()<T>() for a strip-supported dtype; false for others.
template <typename Fn>
bool with_decoder(DType t, Fn&& fn) {
  switch (t) {
    case DType::Q4_0:
      fn.template operator()<DType::Q4_0>();
      return true;
    case DType::Q4_1:
      fn.template operator()<DType::Q4_1>();
      return true;
    case DType::Q5_0:
      fn.template operator()<DType::Q5_0>();
      return true;
    case DType::Q5_1:
      fn.template operator()<DType::Q5_1>();
      return true;
    case DType::Q8_0:
      fn.template operator()<DType::Q8_0>();
      return true;
    case DType::Q2_K:
      fn.template operator()<DType::Q2_K>();
      return true;
    case DType::Q3_K:
      fn.template operator()<DType::Q3_K>();
      return true;
    case DType::Q4_K:
      fn.template operator()<DType::Q4_K>();
      return true;
    case DType::Q5_K:
      fn.template operator()<DType::Q5_K>();
      return true;
    case DType::Q6_K:
      fn.template operator()<DType::Q6_K>();
      return true;
    default:
      return false;
  }
}

}  // namespace
}  // namespace smoe::cpu
