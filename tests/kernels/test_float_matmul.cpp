// Every compiled-in SIMD matmul path against the scalar reference, on odd shapes.
#include <gtest/gtest.h>

#include <random>

#include "../support/param_print.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/ops.h"

namespace smoe {
namespace {

bool supported(BackendIsa isa) {
  const cpu::Isa best = cpu::detect_isa();
  return static_cast<int>(isa) <= static_cast<int>(best);
}

// The float vector kernels of every SIMD instruction set this CPU runs.
std::vector<const cpu::FloatKernels*> simd_float_kernels() {
  std::vector<const cpu::FloatKernels*> ks;
  if (supported(BackendIsa::Avx2)) ks.push_back(&cpu::float_kernels_avx2());
  if (supported(BackendIsa::Avx512)) ks.push_back(&cpu::float_kernels_avx512());
  return ks;
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
  if (!supported(isa)) GTEST_SKIP() << "this CPU does not run " << backend_isa_label(isa);
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

INSTANTIATE_TEST_SUITE_P(AllIsas, FloatMatmul,
                         ::testing::Combine(::testing::Values(BackendIsa::Avx2, BackendIsa::Avx512),
                                            ::testing::Values(DType::F32, DType::F16, DType::BF16)),
                         [](const auto& info) {
                           return std::string(backend_isa_label(std::get<0>(info.param))) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

// Each ISA's attention products over a group of query heads (q·k scores and Σ p·v) against the
// scalar reference, on head sizes that are not a multiple of the vector width and groups that
// are not a multiple of the 4 heads the AVX-512 kernel shares a load with.
TEST(FloatVecOps, GroupedAttentionMatchesScalarOnOddShapes) {
  std::mt19937 rng(21);
  std::normal_distribution<float> nd;
  const std::vector<const cpu::FloatKernels*> ks = simd_float_kernels();
  for (int64_t hd : {1, 7, 16, 33, 128, 131})
    for (int g : {1, 3, 4, 5, 8}) {
      const int64_t n = 1 + (hd * g) % 37, s_stride = n + 3;
      std::vector<float> q(g * hd), kv(2 * n * hd), p(g * s_stride);
      for (float& v : q) v = nd(rng);
      for (float& v : kv) v = nd(rng);
      for (float& v : p) v = nd(rng);
      std::vector<const float*> keys(n), vals(n);
      for (int64_t j = 0; j < n; ++j) {  // keys and values interleaved, as a cache holds them
        keys[j] = kv.data() + 2 * j * hd;
        vals[j] = kv.data() + (2 * j + 1) * hd;
      }
      std::vector<float> ref_s(g * s_stride, -1.0f), ref_o(g * hd, -1.0f);
      ops::scores_group(q.data(), g, keys.data(), n, hd, 0.3f, ref_s.data(), s_stride);
      ops::wsum_group(p.data(), s_stride, g, vals.data(), n, hd, ref_o.data());
      for (const cpu::FloatKernels* k : ks) {
        std::vector<float> s(g * s_stride, -1.0f), o(g * hd, -1.0f);
        k->scores_group(q.data(), g, keys.data(), n, hd, 0.3f, s.data(), s_stride);
        k->wsum_group(p.data(), s_stride, g, vals.data(), n, hd, o.data());
        const float tol = 1e-5f * static_cast<float>(hd + n) * 4.0f;
        for (size_t i = 0; i < s.size(); ++i)
          ASSERT_NEAR(s[i], ref_s[i], tol) << k->isa << " hd " << hd << " g " << g << " " << i;
        for (size_t i = 0; i < o.size(); ++i)
          ASSERT_NEAR(o[i], ref_o[i], tol) << k->isa << " hd " << hd << " g " << g << " " << i;
      }
    }
}

// Softmax of each ISA against the scalar reference, on lengths around the vector widths and on
// rows whose values span a wide range (where e^(x − max) underflows).
TEST(FloatVecOps, SoftmaxMatchesScalar) {
  std::mt19937 rng(23);
  std::normal_distribution<float> nd(0.0f, 8.0f);
  const std::vector<const cpu::FloatKernels*> ks = simd_float_kernels();
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 100, 4097}) {
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng);
    if (n > 2) x[1] = x[0] - 150.0f;  // e^-150 underflows
    if (n > 16) x[n - 1] = 200.0f;    // the maximum in the last vector: e^x alone overflows
    std::vector<float> ref = x;
    ops::softmax(ref.data(), n);
    for (const cpu::FloatKernels* k : ks) {
      std::vector<float> got = x;
      k->softmax(got.data(), n);
      float total = 0;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], ref[i], 1e-6f + 2e-6f * ref[i]) << k->isa << " n " << n << " " << i;
        total += got[i];
      }
      EXPECT_NEAR(total, 1.0f, 1e-5f) << k->isa << " n " << n;
    }
  }
}

// SiLU·mul of each ISA against the scalar reference, on odd lengths and on values where e^-x
// overflows or underflows.
TEST(FloatVecOps, SiluMulMatchesScalar) {
  std::mt19937 rng(22);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  const std::vector<const cpu::FloatKernels*> ks = simd_float_kernels();
  for (int64_t n : {1, 15, 16, 17, 1000}) {
    std::vector<float> a(n), b(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = nd(rng);
      b[i] = nd(rng);
    }
    const float extreme[] = {-200.0f, -88.0f, -30.0f, 0.0f, 30.0f, 90.0f, 200.0f};
    for (int64_t i = 0; i < n && i < 7; ++i) a[i] = extreme[i];
    std::vector<float> ref = a;
    ops::silu_mul(ref.data(), b.data(), n);
    for (const cpu::FloatKernels* k : ks) {
      std::vector<float> got = a;
      k->silu_mul(got.data(), b.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], ref[i], 1e-6f * (1.0f + std::fabs(ref[i])))
            << k->isa << " n " << n << " x " << a[i];
    }
  }
}

}  // namespace
}  // namespace smoe
