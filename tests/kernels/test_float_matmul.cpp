// Every compiled-in SIMD matmul path against the scalar reference, on odd shapes.
#include <gtest/gtest.h>

#include <random>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"

namespace smoe {
namespace {

bool supported(BackendIsa isa) {
  const cpu::Isa best = cpu::detect_isa();
  return static_cast<int>(isa) <= static_cast<int>(best);
}

struct Case {
  int64_t rows, cols, n;
};

std::vector<std::byte> make_weights(DType t, int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::vector<std::byte> b(static_cast<size_t>(count) * (t == DType::F32 ? 4 : 2));
  for (int64_t i = 0; i < count; ++i) {
    const float v = nd(rng);
    if (t == DType::F32) {
      std::memcpy(b.data() + 4 * i, &v, 4);
    } else {
      const uint16_t h = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

class FloatMatmul : public ::testing::TestWithParam<std::tuple<BackendIsa, DType>> {};

TEST_P(FloatMatmul, MatchesReferenceOnOddShapes) {
  const auto [isa, dtype] = GetParam();
  if (!supported(isa)) GTEST_SKIP() << "this CPU does not run " << static_cast<int>(isa);
  std::mt19937 rng(42);
  ThreadPool pool(2);
  for (const Case c : {Case{1, 1, 1}, Case{7, 13, 3}, Case{33, 64, 1}, Case{5, 127, 9},
                       Case{64, 4096, 2}, Case{3, 1000, 17}}) {
    const auto wb = make_weights(dtype, c.rows * c.cols, rng);
    Matrix w{dtype, c.rows, c.cols, wb.data(), wb.size() / static_cast<size_t>(c.rows)};
    std::normal_distribution<float> nd;
    std::vector<float> x(static_cast<size_t>(c.n * c.cols));
    for (float& v : x) v = nd(rng);
    std::vector<float> ref(static_cast<size_t>(c.n * c.rows)), got(ref.size());
    BackendOptions ro{.max_cols = c.cols, .max_rows = c.n, .n_threads = 2, .reference = true};
    make_backend(ro)->matmul(w, x.data(), c.n, ref.data(), pool);
    BackendOptions fo{.max_cols = c.cols, .max_rows = c.n, .n_threads = 2, .isa = isa};
    make_backend(fo)->matmul(w, x.data(), c.n, got.data(), pool);
    // Tolerance: f32 rounding of a length-`cols` sum of O(1) terms in a different order.
    const float tol = 1e-5f * static_cast<float>(c.cols) + 1e-5f;
    for (size_t i = 0; i < ref.size(); ++i)
      ASSERT_NEAR(got[i], ref[i], tol) << "rows " << c.rows << " cols " << c.cols << " i " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllIsas, FloatMatmul,
    ::testing::Combine(::testing::Values(BackendIsa::Scalar, BackendIsa::Avx2, BackendIsa::Avx512),
                       ::testing::Values(DType::F32, DType::F16, DType::BF16)));

// Each ISA's float vector ops (attention's q·k and Σ p·v) against the scalar reference on
// lengths that are not a multiple of the vector width.
TEST(FloatVecOps, MatchScalarOnOddLengths) {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd;
  std::vector<const cpu::FloatKernels*> ks;
  if (supported(BackendIsa::Avx2)) ks.push_back(&cpu::float_kernels_avx2());
  if (supported(BackendIsa::Avx512)) ks.push_back(&cpu::float_kernels_avx512());
  for (int64_t n : {1, 7, 16, 33, 128, 131}) {
    std::vector<float> a(n), b(n), y0(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = nd(rng);
      b[i] = nd(rng);
      y0[i] = nd(rng);
    }
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(a[i]) * b[i];
    for (const cpu::FloatKernels* k : ks) {
      EXPECT_NEAR(k->dot(a.data(), b.data(), n), ref, 1e-4 * (1 + std::abs(ref))) << k->isa;
      std::vector<float> y = y0;
      k->axpy(y.data(), 0.75f, a.data(), n);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[i], y0[i] + 0.75f * a[i], 1e-6f * (1 + std::fabs(y[i])))
            << k->isa << " " << i;
    }
  }
}

}  // namespace
}  // namespace smoe
