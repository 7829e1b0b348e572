// Quantized matmuls of every ISA (activations quantized to 8 bits: integer dot products for one
// or two tokens, the small-batch kernels, the strip GEMM or AMX's tile GEMM for more) against the
// scalar reference that expands the weights to f32, on odd shapes: 1 row, rows not a multiple of
// the 16-row strip, whole 16-row tiles with a part-filled last token tile, 1 to 40 tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../support/param_print.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "quant/quantize.h"

namespace smoe {
namespace {

class QuantMatmul : public ::testing::TestWithParam<std::tuple<BackendIsa, DType>> {};

TEST_P(QuantMatmul, MatchesTheF32ReferenceWithinActivationRounding) {
  const auto [isa, dtype] = GetParam();
  if (!backend_isa_supported(isa))
    GTEST_SKIP() << "this CPU (or its operating system) does not run this instruction set";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  struct Case {
    int64_t rows, cols, n;
  };
  const bool k_quant = dtype_info(dtype).block_size == 256;
  for (Case c :
       {Case{1, 256, 1}, Case{7, 768, 3}, Case{33, 4096, 1}, Case{5, 1024, 9}, Case{64, 256, 17},
        Case{17, 512, 2}, Case{40, 256, 7}, Case{37, 1536, 8}, Case{3, 512, 5}, Case{9, 1024, 3},
        Case{6, 512, 4}, Case{48, 1024, 17}, Case{32, 512, 40}, Case{16, 1536, 9}}) {
    if (!k_quant && c.cols == 768) c.cols = 96;  // legacy types: a width that is not 256·k
    std::vector<float> wf(static_cast<size_t>(c.rows * c.cols)),
        x(static_cast<size_t>(c.n * c.cols));
    for (float& v : wf) v = nd(rng);
    for (float& v : x) v = nd(rng);
    const size_t rb = *dtype_bytes(dtype, c.cols);
    std::vector<std::byte> wq(rb * c.rows);
    for (int64_t r = 0; r < c.rows; ++r)
      quant::quantize_row(dtype, &wf[r * c.cols], wq.data() + r * rb, c.cols);
    Matrix w{dtype, c.rows, c.cols, wq.data(), rb};
    std::vector<float> ref(static_cast<size_t>(c.n * c.rows)), got(ref.size());
    make_backend({.max_cols = c.cols, .max_rows = c.n, .n_threads = 2, .reference = true})
        ->matmul(w, x.data(), c.n, ref.data(), pool);
    make_backend({.max_cols = c.cols, .max_rows = c.n, .n_threads = 2, .isa = isa})
        ->matmul(w, x.data(), c.n, got.data(), pool);
    // The activations carry 8-bit rounding: each is off by at most amax/254 of its block, so a
    // dot is off by about that times √(Σ w²); allow four times it.
    for (int64_t i = 0; i < c.n; ++i)
      for (int64_t r = 0; r < c.rows; ++r) {
        double amax = 0, w2 = 0;
        for (int64_t k = 0; k < c.cols; ++k) {
          amax = std::max(amax, static_cast<double>(std::fabs(x[i * c.cols + k])));
          w2 += static_cast<double>(wf[r * c.cols + k]) * wf[r * c.cols + k];
        }
        const double tol = 4.0 * amax / 254.0 * std::sqrt(w2) + 1e-4;
        ASSERT_NEAR(got[i * c.rows + r], ref[i * c.rows + r], tol)
            << dtype_name(dtype) << " rows " << c.rows << " cols " << c.cols << " n " << c.n;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllIsas, QuantMatmul,
    ::testing::Combine(::testing::Values(BackendIsa::Avx2, BackendIsa::Avx512, BackendIsa::Amx),
                       ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                         DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                         DType::Q5_K, DType::Q6_K)),
    [](const auto& info) {
      const BackendIsa isa = std::get<0>(info.param);
      return std::string(isa == BackendIsa::Avx2     ? "Avx2_"
                         : isa == BackendIsa::Avx512 ? "Avx512_"
                                                     : "Amx_") +
             std::string(dtype_name(std::get<1>(info.param)));
    });

// Several matrices sharing one input give the same rows as separate calls, on every path and
// instruction set this CPU runs (1 token: integer dots or the small-batch kernel; 3 to 8 tokens:
// the small-batch kernels, AMX's from 5, or the strip GEMM; 9 and 20 tokens: the strip GEMM or
// AMX's tile GEMM; mixed types, rows that end inside AMX's 16-row groups).
void expect_multi_equals_separate(const DType (&types)[3], const int64_t (&rows)[3]) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  const int64_t cols = 512;
  std::vector<std::vector<std::byte>> data(3);
  std::vector<Matrix> ms;
  for (int m = 0; m < 3; ++m) {
    std::vector<float> wf(static_cast<size_t>(rows[m] * cols));
    for (float& v : wf) v = nd(rng);
    const size_t rb = *dtype_bytes(types[m], cols);
    data[m].resize(rb * rows[m]);
    for (int64_t r = 0; r < rows[m]; ++r)
      quant::quantize_row(types[m], &wf[r * cols], data[m].data() + r * rb, cols);
    ms.push_back(Matrix{types[m], rows[m], cols, data[m].data(), rb});
  }
  for (const BackendIsa isa : {BackendIsa::Avx2, BackendIsa::Avx512, BackendIsa::Amx})
    for (int64_t n : {1, 3, 5, 8, 9, 20}) {
      if (!backend_isa_supported(isa)) continue;
      std::vector<float> x(static_cast<size_t>(n * cols));
      for (float& v : x) v = nd(rng);
      auto backend = make_backend({.max_cols = cols, .max_rows = n, .n_threads = 2, .isa = isa});
      std::vector<std::vector<float>> one(3), multi(3);
      const Matrix* ws[3];
      float* ys[3];
      for (int m = 0; m < 3; ++m) {
        one[m].resize(static_cast<size_t>(n * rows[m]));
        multi[m].resize(one[m].size());
        backend->matmul(ms[m], x.data(), n, one[m].data(), pool);
        ws[m] = &ms[m];
        ys[m] = multi[m].data();
      }
      backend->matmul_multi(ws, ys, 3, x.data(), n, pool);
      for (int m = 0; m < 3; ++m)
        EXPECT_EQ(one[m], multi[m]) << backend->name() << " matrix " << m << " n " << n;
    }
}

TEST(QuantMatmul, MultiEqualsSeparateCalls) {
  // Q8_0: the small-batch kernel; 33 rows: the strip GEMM past 8 tokens even with AMX.
  expect_multi_equals_separate({DType::Q4_K, DType::Q6_K, DType::Q8_0}, {48, 16, 33});
  // All in whole 16-row tiles: AMX's tile GEMM past 8 tokens.
  expect_multi_equals_separate({DType::Q4_0, DType::Q4_K, DType::Q8_0}, {48, 32, 16});
}

// AMX needs AVX-512 VNNI, and where the CPU or the operating system has no tiles a backend asked
// for AMX runs the AVX-512 kernels instead; Auto picks AMX wherever it can run.
TEST(QuantMatmul, AmxWhereTheCpuHasItElseAvx512) {
  const BackendOptions opts{.max_cols = 512, .max_rows = 4, .n_threads = 1, .isa = BackendIsa::Amx};
  const std::string amx = make_backend(opts)->name();
  const std::string best = make_backend({.max_cols = 512, .max_rows = 4})->name();
  if (backend_isa_supported(BackendIsa::Amx)) {
    EXPECT_TRUE(backend_isa_supported(BackendIsa::Avx512));
    EXPECT_EQ(amx, "cpu-avx512+amx+strip");
    EXPECT_EQ(best, amx);
  } else if (backend_isa_supported(BackendIsa::Avx512)) {
    EXPECT_EQ(amx.find("amx"), std::string::npos) << amx;
    EXPECT_EQ(best.find("amx"), std::string::npos) << best;
  } else {
    GTEST_SKIP() << "this CPU runs neither AMX nor AVX-512";
  }
}

}  // namespace
}  // namespace smoe
