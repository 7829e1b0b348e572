// Q4_0 interleaved by eight rows (MatrixLayout::Rows8, kernels/layout.h) against the file's
// layout it came from: every row reads back byte for byte; the strip repack of every instruction
// set gives the same strip blocks from it as the scalar repack from the file's rows; the AVX2
// small-batch kernel equals the scalar reference on the file's rows; and every backend multiplies
// an interleaved matrix as it multiplies the original, for 1 to 20 tokens (the small-batch, strip
// and fallback paths), the reference exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../support/param_print.h"
#include "core/thread_pool.h"
#include "kernels/cpu/gemv.h"
#include "kernels/cpu/strip.h"
#include "kernels/layout.h"
#include "quant/dequantize.h"
#include "quant_weights.h"

namespace smoe {
namespace {

// Weights of `rows` × `cols` Q4_0 in both layouts.
struct Both {
  test::QuantWeights file;
  std::vector<std::byte> bytes8;
  Matrix rows8;
};

Both make_both(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  Both b;
  b.file = test::make_quant_weights(DType::Q4_0, rows, cols, rng);
  b.bytes8 = b.file.q;
  b.rows8 = b.file.m;
  b.rows8.data = b.bytes8.data();
  interleave_rows8(b.rows8, b.bytes8.data());
  return b;
}

TEST(Layout, EveryRowReadsBackAsTheFileHasIt) {
  const Both b = make_both(24, 1024, 1);
  ASSERT_EQ(b.rows8.layout, MatrixLayout::Rows8);
  ASSERT_NE(b.bytes8, b.file.q);  // the bytes did move
  std::vector<std::byte> row(b.file.m.row_bytes);
  std::vector<float> want(1024), got(1024);
  for (int64_t r = 0; r < 24; ++r) {
    standard_row(b.rows8, r, row.data());
    ASSERT_EQ(std::memcmp(row.data(), b.file.m.row(r), row.size()), 0) << "row " << r;
    quant::dequantize_row(DType::Q4_0, b.file.m.row(r), want.data(), 1024);
    matrix_row_to_f32(b.rows8, r, got.data());
    ASSERT_EQ(want, got) << "row " << r;
  }
}

TEST(Layout, OnlyWholeGroupsOfQ4_0CanInterleave) {
  std::mt19937 rng(2);
  EXPECT_TRUE(can_interleave(test::make_quant_weights(DType::Q4_0, 16, 512, rng).m));
  EXPECT_FALSE(can_interleave(test::make_quant_weights(DType::Q4_0, 12, 512, rng).m));
  EXPECT_FALSE(can_interleave(test::make_quant_weights(DType::Q4_0, 16, 256, rng).m));
  EXPECT_FALSE(can_interleave(test::make_quant_weights(DType::Q8_0, 16, 512, rng).m));
  Both b = make_both(16, 512, 3);
  EXPECT_FALSE(can_interleave(b.rows8));  // already interleaved
  EXPECT_THROW(interleave_rows8(b.rows8, b.bytes8.data()), std::runtime_error);
}

struct StripIsa {
  const char* name;
  BackendIsa isa;
  const cpu::StripKernels& (*kernels)();
};

TEST(Layout, StripRepackOfRows8EqualsTheScalarRepackOfTheFile) {
  const StripIsa isas[] = {{"scalar", BackendIsa::Scalar, cpu::strip_kernels_scalar},
                           {"avx2", BackendIsa::Avx2, cpu::strip_kernels_avx2},
                           {"avx512", BackendIsa::Avx512, cpu::strip_kernels_avx512}};
  const int64_t rows = 40, cols = 1536, nb = cols / 32;
  const Both b = make_both(rows, cols, 4);
  int tested = 0;
  for (const StripIsa& s : isas) {
    if (!backend_isa_supported(s.isa)) continue;
    ++tested;
    // Strips at 0 and 16 are whole; the one at 32 has 8 rows, whose other 8 must be zero.
    for (int64_t r0 : {0, 16, 32}) {
      const int nr = static_cast<int>(std::min<int64_t>(16, rows - r0));
      std::vector<cpu::StripBlock> want(nb), got(nb);
      std::memset(want.data(), 0x5A, want.size() * sizeof(cpu::StripBlock));
      std::memset(got.data(), 0xA5, got.size() * sizeof(cpu::StripBlock));
      cpu::strip_kernels_scalar().repack(b.file.m, r0, nr, want.data());
      s.kernels().repack(b.rows8, r0, nr, got.data());
      ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(cpu::StripBlock)), 0)
          << s.name << " strip at row " << r0;
    }
  }
  EXPECT_GE(tested, 1);
}

TEST(Layout, Avx2SmallBatchKernelEqualsTheScalarReference) {
  if (!backend_isa_supported(BackendIsa::Avx2)) GTEST_SKIP() << "this CPU does not run AVX2";
  const cpu::GemvFn rows8 = cpu::gemv_kernels_avx2().q4_0_rows8;
  ASSERT_NE(rows8, nullptr);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (int64_t rows : {8, 24, 48})
    for (int64_t cols : {512, 1536})
      for (int n = 1; n <= cpu::kGemvMaxTokens; ++n) {
        const Both b = make_both(rows, cols, static_cast<uint32_t>(rows + n));
        const int64_t nb = cols / 32;
        std::vector<float> x(static_cast<size_t>(n * cols));
        for (float& v : x) v = nd(rng);
        std::vector<cpu::ActQ8> act(static_cast<size_t>(n * nb));
        cpu::strip_kernels_scalar().quantize(x.data(), act.data(), n * cols);
        std::vector<int8_t> qs;
        std::vector<float> d, sum;
        for (const cpu::ActQ8& a : act) {
          qs.insert(qs.end(), a.qs, a.qs + 32);
          d.push_back(a.d);
          sum.push_back(a.sum);
        }
        const cpu::GemvActs acts{qs.data(), d.data(), sum.data(), nullptr, cols, nb, n};
        // Rows from the second group on (a call starts at a multiple of 8); the rest untouched.
        const int64_t ldy = rows + 3, r0 = rows > 8 ? 8 : 0;
        std::vector<float> want(n * ldy, -7.0f), got(n * ldy, -7.0f);
        cpu::gemv_kernels_scalar().q4_0(b.file.m, r0, rows, acts, want.data(), ldy);
        rows8(b.rows8, r0, rows, acts, got.data(), ldy);
        for (int64_t i = 0; i < n * ldy; ++i)
          ASSERT_NEAR(got[i], want[i], 2e-5f * std::sqrt(static_cast<float>(cols)) * 40.0f)
              << "rows " << rows << " cols " << cols << " n " << n << " at " << i;
      }
}

class LayoutBackend : public ::testing::TestWithParam<BackendIsa> {};

TEST_P(LayoutBackend, MultipliesRows8AsTheFileLayout) {
  const BackendIsa isa = GetParam();
  if (!backend_isa_supported(isa))
    GTEST_SKIP() << "this CPU (or its operating system) does not run " << backend_isa_label(isa);
  const int64_t rows = 48, cols = 1024;
  const Both b = make_both(rows, cols, 6);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  auto backend = make_backend({.max_cols = cols,
                               .max_rows = 20,
                               .n_threads = 2,
                               .reference = isa == BackendIsa::Scalar,
                               .isa = isa});
  for (int64_t n : {1, 2, 3, 8, 9, 20}) {
    std::vector<float> x(static_cast<size_t>(n * cols)), want(n * rows), got(n * rows);
    for (float& v : x) v = nd(rng);
    backend->matmul(b.file.m, x.data(), n, want.data(), pool);
    backend->matmul(b.rows8, x.data(), n, got.data(), pool);
    for (int64_t i = 0; i < n * rows; ++i) {
      if (isa == BackendIsa::Scalar)
        ASSERT_EQ(got[i], want[i]) << "n " << n << " at " << i;
      else  // other kernels, other rounding of the same integer sums
        ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i])))
            << backend_isa_label(isa) << " n " << n << " at " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, LayoutBackend,
                         ::testing::Values(BackendIsa::Scalar, BackendIsa::Avx2, BackendIsa::Avx512,
                                           BackendIsa::Amx),
                         [](const auto& info) { return backend_isa_label(info.param); });

}  // namespace
}  // namespace smoe
