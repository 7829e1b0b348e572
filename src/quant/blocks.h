// The quantized block formats of GGUF, bit-exact with their definition in the GGUF ecosystem.
// Legacy formats hold 32 weights a block, k-quants 256 ("super-blocks" of 8 or 16 sub-blocks).
// Half-precision fields are raw IEEE half bits (uint16_t).
#pragma once

#include <cstdint>
#include <cstring>

namespace smoe::quant {

inline constexpr int kQK = 32;    // legacy block
inline constexpr int kQKK = 256;  // k-quant super-block

struct BlockQ4_0 {  // x = d·(q − 8), q ∈ [0, 15]; weight j in qs[j] low nibble, j+16 high nibble
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ4_1 {  // x = d·q + m
  uint16_t d, m;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {  // x = d·(q − 16), q ∈ [0, 31]; bit 4 of weight j in bit j of qh
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {  // x = d·q + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {  // x = d·q
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ8_1 {  // activations for Q4_1 / Q5_1 dot products: x = d·q, s = d·Σq
  uint16_t d, s;
  int8_t qs[kQK];
};
struct BlockQ2_K {  // 16 sub-blocks of 16: x = d·(sc & 15)·q − dmin·(sc >> 4), q ∈ [0, 3]
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  uint16_t d, dmin;
};
struct BlockQ3_K {  // 16 sub-blocks of 16: x = d·(s − 32)·(q − 4·!hbit), 6-bit scales packed
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  uint16_t d;
};
struct BlockQ4_K {  // 8 sub-blocks of 32: x = d·sc·q − dmin·m, 6-bit sc and m packed in 12 bytes
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {  // as Q4_K with a fifth bit per weight in qh
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {  // 16 sub-blocks of 16: x = d·sc·(q − 32), q ∈ [0, 63], sc int8
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};
struct BlockQ8_K {  // activations for k-quant dot products
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block.
inline void k4_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// All 8 scales and mins of a Q4_K / Q5_K block at once, as bytes: words 0-1 the scales of
// sub-blocks 0..7 (byte j = sub-block j, as k4_scale_min gives), words 2-3 the mins. Sub-blocks
// 0..3 are the low 6 bits of bytes 0..3 (sc) and 4..7 (m); 4..7 are the nibbles of bytes 8..11
// with their top 2 bits in the top bits of bytes 0..7.
inline void k4_scales_mins(const uint8_t* q, uint32_t out[4]) {
  uint32_t u[3];
  std::memcpy(u, q, 12);
  out[0] = u[0] & 0x3f3f3f3f;
  out[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
  out[2] = u[1] & 0x3f3f3f3f;
  out[3] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
}

}  // namespace smoe::quant
