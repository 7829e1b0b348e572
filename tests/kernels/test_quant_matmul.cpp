// Integer quantized matmuls (activations quantized to 8 bits) of every ISA against the scalar
// reference that expands the weights to f32, on odd shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/quant_kernels.h"
#include "quant/quantize.h"

namespace smoe {
namespace {

class QuantMatmul : public ::testing::TestWithParam<std::tuple<BackendIsa, DType>> {};

TEST_P(QuantMatmul, MatchesTheF32ReferenceWithinActivationRounding) {
  const auto [isa, dtype] = GetParam();
  if (static_cast<int>(isa) > static_cast<int>(cpu::detect_isa()))
    GTEST_SKIP() << "this CPU does not run this instruction set";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  struct Case {
    int64_t rows, cols, n;
  };
  for (const Case c :
       {Case{1, 32, 1}, Case{7, 96, 3}, Case{33, 4096, 1}, Case{5, 1024, 9}, Case{64, 256, 17}}) {
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

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantMatmul,
                         ::testing::Combine(::testing::Values(BackendIsa::Avx2, BackendIsa::Avx512),
                                            ::testing::Values(DType::Q4_0, DType::Q8_0)));

// Each ISA's integer dot equals the scalar integer dot exactly up to float summation order.
TEST(QuantDot, SimdEqualsScalarIntegerDot) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  const int64_t n = 4096;
  std::vector<float> wf(n), x(n);
  for (float& v : wf) v = nd(rng);
  for (float& v : x) v = nd(rng);
  std::vector<cpu::ActQ8> a(n / 32);
  cpu::quantize_act_q8(x.data(), a.data(), n);
  for (DType t : {DType::Q4_0, DType::Q8_0}) {
    std::vector<std::byte> wq(*dtype_bytes(t, n));
    quant::quantize_row(t, wf.data(), wq.data(), n);
    const float ref = cpu::quant_kernels_scalar().for_dtype(t)(wq.data(), a.data(), n);
    if (cpu::detect_isa() >= cpu::Isa::Avx2) {
      EXPECT_NEAR(cpu::quant_kernels_avx2().for_dtype(t)(wq.data(), a.data(), n), ref,
                  1e-3 * std::fabs(ref) + 1e-3);
    }
    if (cpu::has_avx512_vnni()) {
      EXPECT_NEAR(cpu::quant_kernels_avx512().for_dtype(t)(wq.data(), a.data(), n), ref,
                  1e-3 * std::fabs(ref) + 1e-3);
    }
  }
}

// The four-row kernels equal four single-row dots.
TEST(QuantDot, FourRowsAtOnceEqualOneAtATime) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd;
  const int64_t n = 1024, nb = n / 32;
  std::vector<float> wf(n), x(4 * n);
  for (float& v : wf) v = nd(rng);
  for (float& v : x) v = nd(rng);
  std::vector<cpu::ActQ8> a(4 * nb);
  for (int j = 0; j < 4; ++j) cpu::quantize_act_q8(x.data() + j * n, a.data() + j * nb, n);
  std::vector<const cpu::QuantKernels*> ks = {&cpu::quant_kernels_scalar()};
  if (cpu::detect_isa() >= cpu::Isa::Avx2) ks.push_back(&cpu::quant_kernels_avx2());
  if (cpu::has_avx512_vnni()) ks.push_back(&cpu::quant_kernels_avx512());
  for (DType t : {DType::Q4_0, DType::Q8_0}) {
    std::vector<std::byte> wq(*dtype_bytes(t, n));
    quant::quantize_row(t, wf.data(), wq.data(), n);
    for (const cpu::QuantKernels* k : ks) {
      float out[4];
      k->x4_for_dtype(t)(wq.data(), a.data(), nb, n, out);
      for (int j = 0; j < 4; ++j) {
        const float one = k->for_dtype(t)(wq.data(), a.data() + j * nb, n);
        EXPECT_NEAR(out[j], one, 1e-4 * std::fabs(one) + 1e-4) << k->isa << " " << dtype_name(t);
      }
    }
  }
}

}  // namespace
}  // namespace smoe
