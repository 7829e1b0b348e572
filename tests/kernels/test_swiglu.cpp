// An expert's fused SwiGLU (matmul_swiglu: SiLU·mul applied to each block of rows as soon as the
// gate and up products have it) against the same backend's unfused steps (matmul_multi, then
// SiLU·mul over everything), byte for byte, for every ISA, weight type and path (one and two
// tokens through the small-batch kernels, more through the strips or tiles); and against the
// scalar reference within the activations' 8-bit rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../support/param_print.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "quant_weights.h"

namespace smoe {
namespace {

class SwiGlu : public ::testing::TestWithParam<std::tuple<BackendIsa, DType>> {};

using Path = CpuBackend::SwiGluPath;

const char* path_name(Path p) {
  return p == Path::Gemv    ? "gemv"
         : p == Path::Tiles ? "tiles"
         : p == Path::Strip ? "strip"
                            : "unfused";
}

TEST_P(SwiGlu, FusedEqualsTheUnfusedStepsAndTheReference) {
  const auto [isa, dtype] = GetParam();
  if (!backend_isa_supported(isa))
    GTEST_SKIP() << "this CPU (or its operating system) does not run this instruction set";
  std::mt19937 rng(21);
  std::normal_distribution<float> nd;
  const int64_t cols = 512;
  int fused_cases = 0;
  // 48 rows: one block of the fused loop; 592: several, the last part-filled.
  for (int64_t rows : {48, 592}) {
    const test::QuantWeights gate = test::make_quant_weights(dtype, rows, cols, rng);
    const test::QuantWeights up = test::make_quant_weights(dtype, rows, cols, rng);
    for (int64_t n : {1, 2, 3, 9, 40}) {
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        std::vector<float> x(static_cast<size_t>(n * cols));
        for (float& v : x) v = nd(rng);
        const auto backend =
            make_backend({.max_cols = cols, .max_rows = n, .n_threads = threads, .isa = isa});
        const auto* cpu = dynamic_cast<const CpuBackend*>(backend.get());
        ASSERT_NE(cpu, nullptr);
        const Path path = cpu->swiglu_path(gate.m, up.m, n);
        fused_cases += path != Path::Unfused;
        const size_t size = static_cast<size_t>(n * rows);
        std::vector<float> h(size), u(size), h2(size), u2(size), hr(size), ur(size);
        backend->matmul_swiglu(gate.m, up.m, x.data(), n, h.data(), u.data(), pool);

        const Matrix* ws[] = {&gate.m, &up.m};
        float* ys[] = {h2.data(), u2.data()};
        backend->matmul_multi(ws, ys, 2, x.data(), n, pool);
        backend->vec_ops().silu_mul(h2.data(), u2.data(), n * rows);
        ASSERT_EQ(std::memcmp(h.data(), h2.data(), size * sizeof(float)), 0)
            << dtype_name(dtype) << " rows " << rows << " n " << n << " threads " << threads
            << " path " << path_name(path);

        make_backend({.max_cols = cols, .max_rows = n, .n_threads = threads, .reference = true})
            ->matmul_swiglu(gate.m, up.m, x.data(), n, hr.data(), ur.data(), pool);
        double err = 0, norm = 0;
        for (size_t i = 0; i < size; ++i) {
          err += (h[i] - hr[i]) * static_cast<double>(h[i] - hr[i]);
          norm += hr[i] * static_cast<double>(hr[i]);
        }
        EXPECT_LT(std::sqrt(err / norm), 0.02)
            << dtype_name(dtype) << " rows " << rows << " n " << n << " path " << path_name(path);
      }
    }
  }
  // Every type here has a strip GEMM on every ISA, so the fused path must have run.
  EXPECT_GT(fused_cases, 0) << "no case took a fused path";
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SwiGlu,
                         ::testing::Combine(::testing::Values(BackendIsa::Avx2, BackendIsa::Avx512,
                                                              BackendIsa::Amx),
                                            ::testing::Values(DType::Q4_0, DType::Q8_0, DType::Q2_K,
                                                              DType::Q4_K, DType::Q6_K)),
                         [](const auto& info) {
                           return std::string(backend_isa_label(std::get<0>(info.param))) + "_" +
                                  std::string(dtype_name(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace smoe
