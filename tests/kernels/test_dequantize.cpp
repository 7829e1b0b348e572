// Reference dequantizers pinned against hand-made blocks whose values are worked out here from
// the layout description, weight by weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace smoe::quant {
namespace {

template <typename B>
std::vector<float> deq(DType t, const B& b, int n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, &b, y.data(), n);
  return y;
}

TEST(Dequantize, Q4_0NibblesCenteredOn8) {
  BlockQ4_0 b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = deq(DType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8)) << j;            // low nibble: weight j
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j - 8)) << j;  // high nibble: weight j + 16
  }
}

TEST(Dequantize, Q4_1AddsTheMin) {
  BlockQ4_1 b{};
  b.d = f32_to_f16(0.25f);
  b.m = f32_to_f16(-1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(3 | (12 << 4));
  const auto y = deq(DType::Q4_1, b, 32);
  EXPECT_EQ(y[0], 0.25f * 3 - 1.0f);
  EXPECT_EQ(y[31], 0.25f * 12 - 1.0f);
}

TEST(Dequantize, Q5_0FifthBitFromQh) {
  BlockQ5_0 b{};
  b.d = f32_to_f16(1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = 0x21;  // low nibble 1, high nibble 2
  const uint32_t qh = (1u << 3) | (1u << 20);   // weight 3 and weight 20 get bit 4
  std::memcpy(b.qh, &qh, 4);
  const auto y = deq(DType::Q5_0, b, 32);
  EXPECT_EQ(y[0], 1 - 16);
  EXPECT_EQ(y[3], 1 + 16 - 16);
  EXPECT_EQ(y[16], 2 - 16);
  EXPECT_EQ(y[20], 2 + 16 - 16);
}

TEST(Dequantize, Q5_1FifthBitAndMin) {
  BlockQ5_1 b{};
  b.d = f32_to_f16(2.0f);
  b.m = f32_to_f16(0.5f);
  b.qs[5] = 0xF7;
  const uint32_t qh = (1u << 5) | (1u << 21);
  std::memcpy(b.qh, &qh, 4);
  const auto y = deq(DType::Q5_1, b, 32);
  EXPECT_EQ(y[5], 2.0f * (7 + 16) + 0.5f);
  EXPECT_EQ(y[21], 2.0f * (15 + 16) + 0.5f);
  EXPECT_EQ(y[6], 0.5f);
}

TEST(Dequantize, Q8_0) {
  BlockQ8_0 b{};
  b.d = f32_to_f16(0.125f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
  const auto y = deq(DType::Q8_0, b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.125f * (j * 8 - 128));
}

// k-quants: weight index → (sub-block, bit position) worked out from the layouts.
TEST(Dequantize, Q2_KTwoBitsPerWeightSixteenScales) {
  BlockQ2_K b{};
  b.d = f32_to_f16(1.0f);
  b.dmin = f32_to_f16(0.5f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<uint8_t>((s % 16) | ((15 - s) << 4));
  for (int k = 0; k < 64; ++k) b.qs[k] = static_cast<uint8_t>((k * 37 + 11) & 0xFF);
  const auto y = deq(DType::Q2_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    // Weight i: half = i / 128, shift = 2·((i % 128) / 32), byte = 32·half + i % 32;
    // its scale is the (i / 16)-th.
    const int half = i / 128, shift = 2 * ((i % 128) / 32), byte = 32 * half + i % 32;
    const int q = (b.qs[byte] >> shift) & 3, s = i / 16;
    EXPECT_EQ(y[i], 1.0f * (s % 16) * q - 0.5f * (15 - s)) << i;
  }
}

TEST(Dequantize, Q3_KSignedSixBitScalesAndHighBitMask) {
  BlockQ3_K b{};
  b.d = f32_to_f16(0.5f);
  // Scale j (6 bits, biased by 32): low 4 bits in scales[j % 8] (j < 8 low nibble, else high),
  // high 2 bits in scales[8 + j % 4] at bit 2·(j / 4).
  int want_scale[16];
  for (int j = 0; j < 16; ++j) {
    const int v = (j * 5 + 3) & 63;
    want_scale[j] = v - 32;
    b.scales[j % 8] |= static_cast<uint8_t>((v & 0xF) << (j < 8 ? 0 : 4));
    b.scales[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
  for (int k = 0; k < 64; ++k) b.qs[k] = static_cast<uint8_t>((k * 53 + 7) & 0xFF);
  for (int k = 0; k < 32; ++k) b.hmask[k] = static_cast<uint8_t>((k * 29 + 5) & 0xFF);
  const auto y = deq(DType::Q3_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, j = (i % 128) / 32, byte = 32 * half + i % 32;
    const int q = (b.qs[byte] >> (2 * j)) & 3;
    const int hbit = (b.hmask[i % 32] >> (4 * half + j)) & 1;
    EXPECT_EQ(y[i], 0.5f * want_scale[i / 16] * (q - (hbit ? 0 : 4))) << i;
  }
}

// Q4_K / Q5_K pack eight 6-bit (scale, min) pairs in 12 bytes.
void pack_k4(uint8_t s[12], const int sc[8], const int mn[8]) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
}

TEST(Dequantize, Q4_KEightSubBlocksWithScalesAndMins) {
  BlockQ4_K b{};
  b.d = f32_to_f16(0.25f);
  b.dmin = f32_to_f16(0.125f);
  const int sc[8] = {1, 63, 17, 40, 33, 5, 62, 48}, mn[8] = {0, 9, 63, 22, 47, 31, 2, 60};
  pack_k4(b.scales, sc, mn);
  for (int k = 0; k < 128; ++k) b.qs[k] = static_cast<uint8_t>((k * 71 + 13) & 0xFF);
  const auto y = deq(DType::Q4_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32, byte = 32 * (sub / 2) + i % 32;
    const int q = sub % 2 ? b.qs[byte] >> 4 : b.qs[byte] & 0xF;
    EXPECT_EQ(y[i], 0.25f * sc[sub] * q - 0.125f * mn[sub]) << i;
  }
}

TEST(Dequantize, Q5_KFifthBitPerSubBlock) {
  BlockQ5_K b{};
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  const int sc[8] = {3, 60, 12, 33, 41, 7, 55, 19}, mn[8] = {8, 1, 50, 27, 36, 63, 14, 0};
  pack_k4(b.scales, sc, mn);
  for (int k = 0; k < 128; ++k) b.qs[k] = static_cast<uint8_t>((k * 97 + 3) & 0xFF);
  for (int k = 0; k < 32; ++k) b.qh[k] = static_cast<uint8_t>((k * 45 + 17) & 0xFF);
  const auto y = deq(DType::Q5_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32, byte = 32 * (sub / 2) + i % 32;
    const int low = sub % 2 ? b.qs[byte] >> 4 : b.qs[byte] & 0xF;
    const int high = (b.qh[i % 32] >> sub) & 1;
    EXPECT_EQ(y[i], 0.5f * sc[sub] * (low + 16 * high) - 0.25f * mn[sub]) << i;
  }
}

TEST(Dequantize, Q6_KSixBitsSignedScales) {
  BlockQ6_K b{};
  b.d = f32_to_f16(0.5f);
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s * 9 - 70);
  for (int k = 0; k < 128; ++k) b.ql[k] = static_cast<uint8_t>((k * 83 + 29) & 0xFF);
  for (int k = 0; k < 64; ++k) b.qh[k] = static_cast<uint8_t>((k * 61 + 41) & 0xFF);
  const auto y = deq(DType::Q6_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    // Halves of 128; within one, weight r: low 4 bits from ql[64·half + r % 64] (low nibble
    // for r < 64, high otherwise), high 2 bits from qh[32·half + r % 32] at 2·(r / 32).
    const int half = i / 128, r = i % 128;
    const uint8_t l = b.ql[64 * half + r % 64];
    const int low = r < 64 ? l & 0xF : l >> 4;
    const int high = (b.qh[32 * half + r % 32] >> (2 * (r / 32))) & 3;
    EXPECT_EQ(y[i], 0.5f * b.scales[i / 16] * ((low | (high << 4)) - 32)) << i;
  }
}

TEST(Dequantize, PartialBlocksAreRejected) {
  BlockQ4_K b{};
  std::vector<float> y(300);
  EXPECT_THROW(dequantize_row(DType::Q4_K, &b, y.data(), 100), Error);
  EXPECT_THROW(dequantize_row(DType::Q8_0, &b, y.data(), 31), Error);
  EXPECT_THROW(dequantize_row(DType::Q8_K, &b, y.data(), 256), Error);  // activations only
  EXPECT_THROW(dequantize_row(DType::I32, &b, y.data(), 4), Error);
}

TEST(Dequantize, HalfBfloatAndFloat) {
  // IEEE half: 1, -2, the largest finite (65504), the smallest subnormal (2^-24), -0.
  const uint16_t h[5] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000};
  const auto f16 = deq(DType::F16, h, 5);
  EXPECT_EQ(f16[0], 1.0f);
  EXPECT_EQ(f16[1], -2.0f);
  EXPECT_EQ(f16[2], 65504.0f);
  EXPECT_EQ(f16[3], std::ldexp(1.0f, -24));
  EXPECT_TRUE(f16[4] == 0.0f && std::signbit(f16[4]));
  // bfloat16 is the top half of a float: 1, -5, 3.140625 (0x4049).
  const uint16_t bf[3] = {0x3F80, 0xC0A0, 0x4049};
  const auto b16 = deq(DType::BF16, bf, 3);
  EXPECT_EQ(b16[0], 1.0f);
  EXPECT_EQ(b16[1], -5.0f);
  EXPECT_EQ(b16[2], 3.140625f);
  const float f[3] = {1.5f, -0.25f, 1e30f};
  const auto f32 = deq(DType::F32, f, 3);
  EXPECT_EQ(f32, std::vector<float>(f, f + 3));
}

}  // namespace
}  // namespace smoe::quant
