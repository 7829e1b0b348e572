// The small-batch kernels against their definitions: the scalar reference equals the exact dot
// of the dequantized weights with the dequantized activations, and the SIMD kernels (AVX2,
// AVX-512, AMX) equal the scalar reference on odd shapes (1 to 50 rows, 1 to 8 tokens, a row range
// inside the matrix, so that AVX2's eight-row tiles, AVX-512's four-row tiles and AMX's groups of
// 16 rows meet both whole groups and leftover rows), for Q4_0, Q8_0, Q4_K and Q6_K, and give every
// row the same result however the rows are split into calls at multiples of the row group.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../support/param_print.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/gemv.h"
#include "kernels/cpu/strip.h"
#include "quant/dequantize.h"
#include "quant/dispatch.h"
#include "quant/quantize.h"
#include "quant_weights.h"

namespace smoe {
namespace {

struct Problem {
  test::QuantWeights w;
  std::vector<int8_t> qs;
  std::vector<float> d, sum;
  std::vector<int32_t> sum4;
  std::vector<int8_t> tq;  // the tile layout (AMX)
  std::vector<float> td, ts;
  cpu::GemvActs acts;
};

// rows × cols weights of type t and n quantized tokens, in planar form.
Problem make(DType t, int64_t rows, int64_t cols, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  Problem s;
  s.w = test::make_quant_weights(t, rows, cols, rng);
  const int64_t nb = cols / 32;
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (float& v : x) v = nd(rng);
  std::vector<cpu::ActQ8> act(static_cast<size_t>(n * nb));
  cpu::strip_kernels_scalar().quantize(x.data(), act.data(), n * cols);
  for (const cpu::ActQ8& a : act) {
    s.qs.insert(s.qs.end(), a.qs, a.qs + 32);
    s.d.push_back(a.d);
    s.sum.push_back(a.sum);
  }
  s.sum4.resize(s.qs.size() / 4);
  cpu::gemv_sums_of_4(s.qs.data(), static_cast<int64_t>(s.qs.size()), s.sum4.data());
  s.acts = {s.qs.data(), s.d.data(), s.sum.data(), s.sum4.data(), cols, nb, n};
  s.tq.resize(static_cast<size_t>(cpu::gemv_tile_bytes(cols)));
  s.td.resize(static_cast<size_t>(cpu::gemv_tile_floats(cols)));
  s.ts.resize(s.td.size());
  for (int t = 0; t < cpu::kGemvMaxTokens; ++t)
    cpu::gemv_pack_token(s.acts, t, s.tq.data(), s.td.data(), s.ts.data());
  s.acts.tq = s.tq.data();
  s.acts.td = s.td.data();
  s.acts.ts = s.ts.data();
  return s;
}

TEST(Gemv, ScalarEqualsTheDequantizedDot) {
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t rows = 9, cols = 1024, nb = cols / 32;
    const int n = 3;
    const Problem s = make(t, rows, cols, n, 3);
    std::vector<float> y(n * rows);
    cpu::gemv_kernels_scalar().of_type(t)(s.w.m, 0, rows, s.acts, y.data(), rows);
    std::vector<float> w(cols);
    for (int64_t r = 0; r < rows; ++r) {
      quant::dequantize_row(t, s.w.m.row(r), w.data(), cols);
      for (int i = 0; i < n; ++i) {
        double exact = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const double x = static_cast<double>(s.d[i * nb + c / 32]) * s.qs[i * cols + c];
          exact += w[c] * x;
          mag += std::fabs(w[c] * x);
        }
        EXPECT_NEAR(y[i * rows + r], exact, 1e-5 * mag) << dtype_name(t) << " row " << r;
      }
    }
  }
}

struct SimdGemv {
  const char* name;
  BackendIsa isa;
  const cpu::GemvKernels& (*kernels)();
};
void PrintTo(const SimdGemv& s, std::ostream* os) {
  *os << s.name;
}

class GemvSimd : public ::testing::TestWithParam<SimdGemv> {};

TEST_P(GemvSimd, EqualsScalarOnOddShapes) {
  if (!backend_isa_supported(GetParam().isa))
    GTEST_SKIP() << "this CPU (or its operating system) does not run the " << GetParam().name
                 << " kernels";
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const cpu::GemvFn kernel = GetParam().kernels().of_type(t);
    ASSERT_NE(kernel, nullptr) << dtype_name(t);
    for (int64_t rows : {1, 5, 8, 17, 37, 50})
      for (int64_t cols : {512, 1536})
        for (int n = 1; n <= cpu::kGemvMaxTokens; ++n) {
          const Problem s = make(t, rows, cols, n, static_cast<uint32_t>(rows * 100 + n));
          const int64_t ldy = rows + 3, r0 = rows / 3, r1 = rows;
          std::vector<float> ref(n * ldy, -7.0f), got(n * ldy, -7.0f);
          cpu::gemv_kernels_scalar().of_type(t)(s.w.m, r0, r1, s.acts, ref.data(), ldy);
          kernel(s.w.m, r0, r1, s.acts, got.data(), ldy);
          for (int64_t i = 0; i < n * ldy; ++i)  // rows outside [r0, r1) stay untouched
            ASSERT_NEAR(got[i], ref[i], 2e-5f * (std::sqrt(static_cast<float>(cols)) * 40.0f))
                << dtype_name(t) << " rows " << rows << " cols " << cols << " n " << n << " at "
                << i;
        }
  }
}

TEST_P(GemvSimd, RowsDoNotDependOnHowTheCallsSplitThem) {
  if (!backend_isa_supported(GetParam().isa))
    GTEST_SKIP() << "this CPU (or its operating system) does not run the " << GetParam().name
                 << " kernels";
  const cpu::GemvKernels& k = GetParam().kernels();
  const int64_t rows = 53, cols = 1024, g = k.row_group;
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K})
    for (int n : {1, 3, 8}) {
      const Problem s = make(t, rows, cols, n, static_cast<uint32_t>(n + 7));
      std::vector<float> whole(n * rows), parts(n * rows);
      k.of_type(t)(s.w.m, 0, rows, s.acts, whole.data(), rows);
      for (int64_t split = g; split < rows; split += g) {
        std::fill(parts.begin(), parts.end(), -7.0f);
        k.of_type(t)(s.w.m, 0, split, s.acts, parts.data(), rows);
        k.of_type(t)(s.w.m, split, rows, s.acts, parts.data(), rows);
        ASSERT_EQ(parts, whole) << dtype_name(t) << " n " << n << " split at " << split;
      }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Isas, GemvSimd,
    ::testing::Values(SimdGemv{"AVX2", BackendIsa::Avx2, &cpu::gemv_kernels_avx2},
                      // Both prefetch targets (each CPU takes one; the sums must not depend on it).
                      SimdGemv{"AVX-512 VNNI, next rows into L1", BackendIsa::Avx512,
                               +[]() -> const cpu::GemvKernels& {
                                 return cpu::gemv_kernels_avx512(cpu::PullTo::L1);
                               }},
                      SimdGemv{"AVX-512 VNNI, next rows into L2", BackendIsa::Avx512,
                               +[]() -> const cpu::GemvKernels& {
                                 return cpu::gemv_kernels_avx512(cpu::PullTo::L2);
                               }},
                      SimdGemv{"AMX", BackendIsa::Amx, &cpu::gemv_kernels_amx}),
    [](const auto& info) {
      const std::string name = info.param.name;
      return info.param.isa == BackendIsa::Avx2     ? std::string("Avx2")
             : info.param.isa == BackendIsa::Amx    ? std::string("Amx")
             : name.find("L1") != std::string::npos ? std::string("Avx512PullToL1")
                                                    : std::string("Avx512PullToL2");
    });

TEST(Gemv, Avx512PullsRowsIntoL1OnAmdAndL2Elsewhere) {
  const cpu::PullTo want = cpu::cpu_is_amd() ? cpu::PullTo::L1 : cpu::PullTo::L2;
  EXPECT_EQ(&cpu::gemv_kernels_avx512(), &cpu::gemv_kernels_avx512(want));
  EXPECT_NE(&cpu::gemv_kernels_avx512(cpu::PullTo::L1), &cpu::gemv_kernels_avx512(cpu::PullTo::L2));
}

TEST(Gemv, DeclinesTypesAndWidthsItHasNoKernelFor) {
  const auto& k = cpu::gemv_kernels_avx512();
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q5_K, 4, 512, nullptr, 0}, 2), nullptr);
  EXPECT_NE(k.for_matrix(Matrix{DType::Q6_K, 4, 512, nullptr, 0}, 1), nullptr);
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q6_K, 4, 768, nullptr, 0}, 1), nullptr);  // dot product
  EXPECT_NE(k.for_matrix(Matrix{DType::Q6_K, 4, 512, nullptr, 0}, 3), nullptr);
  EXPECT_NE(k.for_matrix(Matrix{DType::Q6_K, 4, 512, nullptr, 0}, 8), nullptr);  // four rows
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q6_K, 4, 512, nullptr, 0}, 9), nullptr);  // strip GEMM
  EXPECT_NE(k.for_matrix(Matrix{DType::Q4_K, 4, 512, nullptr, 0}, 1), nullptr);
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q4_K, 4, 256, nullptr, 0}, 1), nullptr);  // dot product
  EXPECT_NE(k.for_matrix(Matrix{DType::Q4_K, 4, 512, nullptr, 0}, 2), nullptr);
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q4_0, 4, 480, nullptr, 0}, 1), nullptr);
  EXPECT_NE(k.for_matrix(Matrix{DType::Q4_0, 4, 1024, nullptr, 0}, 2), nullptr);
  EXPECT_NE(k.for_matrix(Matrix{DType::Q4_0, 4, 1024, nullptr, 0}, 8), nullptr);  // four rows
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q4_0, 4, 1024, nullptr, 0}, 9), nullptr);  // strip GEMM
  EXPECT_NE(k.for_matrix(Matrix{DType::Q8_0, 4, 14336, nullptr, 0}, 4), nullptr);
  EXPECT_NE(k.for_matrix(Matrix{DType::Q8_0, 4, 14336, nullptr, 0}, 1), nullptr);
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q8_0, 4, 14400, nullptr, 0}, 1), nullptr);  // dot product
  EXPECT_EQ(k.for_matrix(Matrix{DType::Q8_0, 4, 14336, nullptr, 0}, 5), nullptr);
  const auto& k2 = cpu::gemv_kernels_avx2();  // Q8_0: the strip GEMM from 5 tokens on
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q8_0, 4, 4096, nullptr, 0}, 1), nullptr);
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q8_0, 4, 4096, nullptr, 0}, 4), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q8_0, 4, 4096, nullptr, 0}, 5), nullptr);
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q4_0, 4, 4096, nullptr, 0}, 2), nullptr);
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q4_0, 4, 4096, nullptr, 0}, 3), nullptr);  // eight rows
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q4_0, 4, 4096, nullptr, 0}, 8), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q4_0, 4, 4096, nullptr, 0}, 9), nullptr);  // strip GEMM
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q4_K, 4, 4096, nullptr, 0}, 1), nullptr);
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q4_K, 4, 4096, nullptr, 0}, 8), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q4_K, 4, 4096, nullptr, 0}, 9), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q4_K, 4, 256, nullptr, 0}, 2), nullptr);  // dot product
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q6_K, 4, 4096, nullptr, 0}, 2), nullptr);
  EXPECT_NE(k2.for_matrix(Matrix{DType::Q6_K, 4, 14336, nullptr, 0}, 8), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q6_K, 4, 4096, nullptr, 0}, 9), nullptr);
  EXPECT_EQ(k2.for_matrix(Matrix{DType::Q5_K, 4, 4096, nullptr, 0}, 2), nullptr);
}

}  // namespace
}  // namespace smoe
