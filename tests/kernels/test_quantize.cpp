// Quantize → dequantize error per type on random weights, and exact round trips on the grid.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace smoe::quant {
namespace {

double relative_rmse(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(*dtype_bytes(t, static_cast<int64_t>(x.size())));
  std::vector<float> y(x.size());
  quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += (x[i] - y[i]) * (x[i] - y[i]);
    s += x[i] * x[i];
  }
  return std::sqrt(e / s);
}

TEST(Quantize, ErrorPerTypeOnGaussianWeights) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> x(256 * 64);
  for (float& v : x) v = nd(rng);
  // Bounds: measured values (printed) with a little room; more bits must mean less error.
  const struct {
    DType t;
    double bound;
  } cases[] = {{DType::F16, 0.001},  {DType::Q8_0, 0.006}, {DType::Q6_K, 0.025},
               {DType::Q5_K, 0.045}, {DType::Q5_1, 0.055}, {DType::Q5_0, 0.055},
               {DType::Q4_K, 0.09},  {DType::Q4_1, 0.11},  {DType::Q4_0, 0.12}};
  for (const auto& c : cases) {
    const double e = relative_rmse(c.t, x);
    std::printf("%-5s relative RMSE %.4f\n", std::string(dtype_name(c.t)).c_str(), e);
    EXPECT_LT(e, c.bound) << dtype_name(c.t);
  }
  EXPECT_LT(relative_rmse(DType::Q6_K, x), relative_rmse(DType::Q4_K, x));
  EXPECT_LT(relative_rmse(DType::Q5_K, x), relative_rmse(DType::Q4_K, x));
}

TEST(Quantize, ValuesOnTheGridRoundTripExactly) {
  // Q8_0 with max |x| = 127·d represents every multiple of d in range exactly.
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = 0.5f * static_cast<float>((i * 37) % 255 - 127);
  EXPECT_EQ(relative_rmse(DType::Q8_0, x), 0.0);
  // Q4_0: levels -8..7 times d, with -8·d the extreme.
  std::vector<float> y(32);
  for (int i = 0; i < 32; ++i) y[i] = 0.25f * static_cast<float>(i % 16 - 8);
  EXPECT_EQ(relative_rmse(DType::Q4_0, y), 0.0);
}

TEST(Quantize, ZerosStayZeros) {
  std::vector<float> z(256, 0.0f);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K}) {
    std::vector<uint8_t> q(*dtype_bytes(t, 256));
    std::vector<float> y(256, 1.0f);
    quantize_row(t, z.data(), q.data(), 256);
    dequantize_row(t, q.data(), y.data(), 256);
    for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace smoe::quant
