// The strip GEMM pieces against their definitions: repacking reproduces the reference
// dequantizer for every type, each SIMD repack and activation quantizer (AVX2, AVX-512) equals
// the scalar one byte for byte, and each SIMD GEMM equals the scalar GEMM on odd shapes (1 to 13
// tokens, 1 to 32 rows in one or two strips, every weight type) and on rows of 4864 columns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <random>

#include "../support/param_print.h"
#include "kernels/cpu/strip.h"
#include "quant/dequantize.h"
#include "quant/dispatch.h"
#include "quant/quantize.h"
#include "quant_weights.h"

namespace smoe {
namespace {

const DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                        DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// One SIMD implementation of the strip kernels and whether this CPU runs it.
struct SimdStrip {
  const char* name;
  quant::Isa isa;
  const cpu::StripKernels& (*kernels)();
};
void PrintTo(const SimdStrip& s, std::ostream* os) {
  *os << s.name;
}

class StripSimd : public ::testing::TestWithParam<SimdStrip> {
 protected:
  void SetUp() override {
    if (!quant::isa_supported(GetParam().isa))
      GTEST_SKIP() << "this CPU does not run the " << GetParam().name << " kernels";
  }
  const cpu::StripKernels& simd() const { return GetParam().kernels(); }
};

using Weights = test::QuantWeights;

Weights make_weights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  return test::make_quant_weights(t, rows, cols, rng);
}

TEST(StripRepack, ReproducesTheReferenceDequantizerForEveryType) {
  const int64_t rows = 21, cols = 512;
  for (DType t : kTypes) {
    const Weights w = make_weights(t, rows, cols, 7);
    std::vector<cpu::StripBlock> s(cols / 32);
    std::vector<float> ref(cols);
    for (int64_t r0 = 0; r0 < rows; r0 += cpu::kStripRows) {
      const int nr = static_cast<int>(std::min<int64_t>(cpu::kStripRows, rows - r0));
      cpu::strip_kernels_scalar().repack(w.m, r0, nr, s.data());
      for (int r = 0; r < cpu::kStripRows; ++r) {
        if (r < nr) quant::dequantize_row(t, w.m.row(r0 + r), ref.data(), cols);
        for (int64_t c = 0; c < cols; ++c) {
          const cpu::StripBlock& b = s[c / 32];
          const int j = static_cast<int>(c % 32), h = j / 16;
          const float got = b.scale[h][r] * b.q[j / 4][r][j % 4] + b.offset[h][r];
          const float want = r < nr ? ref[c] : 0.0f;
          ASSERT_NEAR(got, want, 1e-5f * (1.0f + std::fabs(want)))
              << dtype_name(t) << " row " << r0 + r << " col " << c;
        }
      }
    }
  }
}

TEST_P(StripSimd, RepackEqualsScalarByteForByte) {
  const int64_t rows = 37, cols = 768;
  for (DType t : kTypes) {
    const Weights w = make_weights(t, rows, cols, 8);
    std::vector<cpu::StripBlock> a(cols / 32), b(cols / 32);
    for (int64_t r0 = 0; r0 < rows; r0 += cpu::kStripRows) {
      const int nr = static_cast<int>(std::min<int64_t>(cpu::kStripRows, rows - r0));
      cpu::strip_kernels_scalar().repack(w.m, r0, nr, a.data());
      simd().repack(w.m, r0, nr, b.data());
      ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(cpu::StripBlock)), 0)
          << dtype_name(t) << " strip at row " << r0;
    }
  }
}

TEST_P(StripSimd, QuantizerEqualsScalarBitForBit) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  const int64_t n = 4096;
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng) * 3.0f;
  for (int j = 0; j < 32; ++j) x[j] = 0.0f;  // an all-zero block
  x[40] = 127.0f * 0.5f / 63.5f;             // ties to even
  std::vector<cpu::ActQ8> a(n / 32), b(n / 32);
  cpu::strip_kernels_scalar().quantize(x.data(), a.data(), n);
  simd().quantize(x.data(), b.data(), n);
  ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(cpu::ActQ8)), 0);
  EXPECT_EQ(a[0].d, 0.0f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(a[0].qs[i], 0);
}

// The SIMD GEMM against the scalar one for every weight type: `cols` columns, rows nr ∈ rows (up
// to 32, in one or two strips), 1 .. max_n tokens; a prefetch plan for odd token counts.
void expect_gemm_equals_scalar(const cpu::StripKernels& simd, int64_t cols, int64_t max_n,
                               std::initializer_list<int> rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  const int64_t nb = cols / 32, ldy = 35;
  std::vector<float> x(max_n * cols);
  for (float& v : x) v = nd(rng);
  std::vector<cpu::ActQ8> act(max_n * nb);
  cpu::strip_kernels_scalar().quantize(x.data(), act.data(), max_n * cols);
  for (DType t : kTypes) {
    const Weights w = make_weights(t, cpu::kGemmRows, cols, seed + 1);
    std::vector<cpu::StripBlock> s(2 * nb);  // rows 16 .. 31 in the second strip
    for (int nr : rows) {
      cpu::strip_kernels_scalar().repack(w.m, 0, std::min(nr, 16), s.data());
      if (nr > 16) cpu::strip_kernels_scalar().repack(w.m, 16, nr - 16, s.data() + nb);
      for (int64_t n = 1; n <= max_n; ++n) {
        std::vector<float> ref(n * ldy, -1.0f), got(n * ldy, -1.0f);
        cpu::strip_kernels_scalar().gemm(s.data(), nb, t, act.data(), nb, n, ref.data(), ldy, nr,
                                         nullptr);
        const cpu::StripPrefetch pf{w.m.data, w.m.row_bytes, w.m.row_bytes, 32};
        simd.gemm(s.data(), nb, t, act.data(), nb, n, got.data(), ldy, nr, n % 2 ? &pf : nullptr);
        for (int64_t i = 0; i < n * ldy; ++i)
          ASSERT_NEAR(got[i], ref[i], 1e-4f * (1.0f + std::fabs(ref[i])))
              << dtype_name(t) << " cols " << cols << " rows " << nr << " tokens " << n << " at "
              << i;
      }
    }
  }
}

TEST_P(StripSimd, GemmEqualsScalarOnOddShapes) {
  expect_gemm_equals_scalar(simd(), 256, 13, {1, 5, 16, 17, 29, 32}, 10);
}

// Rows long enough that a kernel may take the columns in several passes (ffn_down's are 14336):
// 4864 columns, 152 blocks, so that a pass of 128 blocks leaves a partial one.
TEST_P(StripSimd, GemmEqualsScalarOnLongRows) {
  expect_gemm_equals_scalar(simd(), 4864, 5, {7, 32}, 12);
}

INSTANTIATE_TEST_SUITE_P(
    Isas, StripSimd,
    ::testing::Values(SimdStrip{"AVX2", quant::Isa::Avx2, &cpu::strip_kernels_avx2},
                      SimdStrip{"AVX-512 VNNI", quant::Isa::Avx512, &cpu::strip_kernels_avx512}),
    [](const auto& info) {
      return std::string(info.param.isa == quant::Isa::Avx2 ? "Avx2" : "Avx512");
    });

}  // namespace
}  // namespace smoe
