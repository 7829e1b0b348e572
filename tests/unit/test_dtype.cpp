#include <gtest/gtest.h>

#include <cmath>

#include "core/dtype.h"
#include "core/fp16.h"

namespace smoe {

TEST(DType, GgmlIdsRoundTrip) {
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    auto back = dtype_from_ggml(dtype_info(t).ggml_id);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, t);
  }
  EXPECT_FALSE(dtype_from_ggml(16).has_value());
  EXPECT_EQ(ggml_type_name(16), "IQ2_XXS");
}

TEST(DType, BlockBytes) {
  EXPECT_EQ(*dtype_bytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(*dtype_bytes(DType::Q4_K, 512), 288u);
  EXPECT_FALSE(dtype_bytes(DType::Q4_K, 100).has_value());
  EXPECT_EQ(*dtype_from_name("q4_k"), DType::Q4_K);
}

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // halfway: even stays
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // halfway: rounds up to even
  EXPECT_EQ(f32_to_f16(70000.0f), 0x7c00);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
}

}  // namespace smoe
