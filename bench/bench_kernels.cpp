// Micro-benchmarks of the matmul kernels: a 4096-row × 4096-column weight matrix times 1, 2, 3, 4,
// 8, 16, 64 and 128 activation rows (tokens), per dtype and instruction set. Reports weight bytes
// streamed per second and multiply-adds per second (MAC/s); quantized types take the small-batch
// kernels where they have one for the batch size (AVX-512: Q4_0, Q4_K and Q6_K 1-8 tokens, Q8_0
// 1-4; AMX: Q4_0, Q4_K and Q8_0 5-8, the AVX-512 ones below; AVX2: Q4_0 and Q8_0 1-2), else
// per-row dot products for 1-2 tokens and the strip GEMM from 3. These matrices (9 MB of
// Q4_0) stay in a large L3; the AMX ranges were set on matrices read from memory.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/strip.h"
#include "quant/quantize.h"

namespace smoe {
namespace {

void BM_Matmul(benchmark::State& state, DType t, BackendIsa isa) {
  if (!backend_isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const int64_t rows = 4096, cols = 4096, n = state.range(0);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> row(cols), x(n * cols), y(n * rows);
  for (float& v : x) v = nd(rng);
  const size_t rb = *dtype_bytes(t, cols);
  std::vector<std::byte> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  Matrix m{t, rows, cols, w.data(), rb};
  ThreadPool pool(1);
  auto backend = make_backend({.max_cols = cols,
                               .max_rows = n,
                               .n_threads = 1,
                               .reference = isa == BackendIsa::Scalar,
                               .isa = isa});
  for (auto _ : state) {
    backend->matmul(m, x.data(), n, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size()));
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(rows * cols * n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// The strip GEMM's unpacking alone: every 16-row strip of a 4096-column matrix (4096 rows, or 64
// that stay in cache) into the interleaved layout, as a matmul of 3+ tokens does before it
// multiplies.
void BM_Repack(benchmark::State& state, DType t, BackendIsa isa) {
  if (static_cast<int>(isa) > static_cast<int>(cpu::detect_isa())) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const cpu::StripKernels& k =
      isa == BackendIsa::Avx512 ? cpu::strip_kernels_avx512() : cpu::strip_kernels_avx2();
  const int64_t rows = state.range(0), cols = 4096;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> row(cols);
  const size_t rb = *dtype_bytes(t, cols);
  std::vector<std::byte> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  const Matrix m{t, rows, cols, w.data(), rb};
  std::vector<cpu::StripBlock> strip(cols / 32);
  for (auto _ : state) {
    for (int64_t r0 = 0; r0 < rows; r0 += cpu::kStripRows) {
      k.repack(m, r0, cpu::kStripRows, strip.data());
      benchmark::DoNotOptimize(strip.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size()));
}

#define SMOE_BENCH_REPACK(T, ISA)                                    \
  BENCHMARK_CAPTURE(BM_Repack, T##_##ISA, DType::T, BackendIsa::ISA) \
      ->Arg(4096)                                                    \
      ->Arg(64)                                                      \
      ->Unit(benchmark::kMillisecond)

SMOE_BENCH_REPACK(Q4_0, Avx2);
SMOE_BENCH_REPACK(Q8_0, Avx2);
SMOE_BENCH_REPACK(Q4_K, Avx2);
SMOE_BENCH_REPACK(Q6_K, Avx2);
SMOE_BENCH_REPACK(Q4_0, Avx512);
SMOE_BENCH_REPACK(Q8_0, Avx512);
SMOE_BENCH_REPACK(Q4_K, Avx512);
SMOE_BENCH_REPACK(Q6_K, Avx512);

#define SMOE_BENCH(T, ISA)                                           \
  BENCHMARK_CAPTURE(BM_Matmul, T##_##ISA, DType::T, BackendIsa::ISA) \
      ->Arg(1)                                                       \
      ->Arg(2)                                                       \
      ->Arg(3)                                                       \
      ->Arg(4)                                                       \
      ->Arg(8)                                                       \
      ->Arg(16)                                                      \
      ->Arg(64)                                                      \
      ->Arg(128)                                                     \
      ->Unit(benchmark::kMillisecond)

SMOE_BENCH(F32, Avx2);
SMOE_BENCH(F32, Avx512);
SMOE_BENCH(F16, Avx512);
SMOE_BENCH(BF16, Avx512);
SMOE_BENCH(Q8_0, Scalar);
SMOE_BENCH(Q8_0, Avx2);
SMOE_BENCH(Q4_0, Scalar);
SMOE_BENCH(Q4_0, Avx2);
SMOE_BENCH(Q4_0, Avx512);
SMOE_BENCH(Q4_K, Avx512);
SMOE_BENCH(Q6_K, Avx512);
SMOE_BENCH(Q4_K, Avx2);
SMOE_BENCH(Q6_K, Avx2);
SMOE_BENCH(Q5_K, Avx512);
SMOE_BENCH(Q8_0, Avx512);
SMOE_BENCH(Q4_0, Amx);
SMOE_BENCH(Q8_0, Amx);
SMOE_BENCH(Q4_K, Amx);

}  // namespace
}  // namespace smoe
