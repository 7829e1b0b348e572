// Micro-benchmarks of the quantized dot products per weight type and instruction set: one
// 4096-long row (weights in L1) and a 4096 × 4096 matrix-vector product on one thread (weights
// streamed from memory; the activations are quantized once per product, as an engine does).
// Bytes processed are weight bytes, so the matvec rate is the weight bandwidth achieved.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "quant/dispatch.h"
#include "quant/quantize.h"
#include "quant/vec_dot.h"

namespace smoe::quant {
namespace {

constexpr int64_t kCols = 4096;

// A matrix of quantized Gaussian weights.
std::vector<uint8_t> random_weights(DType t, int64_t rows, std::mt19937& rng) {
  std::vector<float> row(kCols);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  const size_t rb = *dtype_bytes(t, kCols);
  std::vector<uint8_t> w(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    quantize_row(t, row.data(), w.data() + r * rb, kCols);
  }
  return w;
}

bool usable(benchmark::State& state, Isa isa, DType t) {
  if (!isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return false;
  }
  if (!vec_dot_kernels_own(isa).dot_for(t)) {
    state.SkipWithError("no kernel of its own at this level");
    return false;
  }
  return true;
}

void BM_VecDotRow(benchmark::State& state, DType t, Isa isa) {
  if (!usable(state, isa, t)) return;
  const VecDotKernels& k = vec_dot_kernels(isa);
  std::mt19937 rng(1);
  const auto w = random_weights(t, 1, rng);
  std::vector<float> x(kCols);
  std::normal_distribution<float> nd;
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> qx(*dtype_bytes(*vec_dot_act_type(t), kCols));
  k.quantize_for(t)(x.data(), qx.data(), kCols);
  const DotFn dot = k.dot_for(t);
  for (auto _ : state) benchmark::DoNotOptimize(dot(w.data(), qx.data(), kCols));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size()));
}

void BM_MatVec(benchmark::State& state, DType t, Isa isa) {
  if (!usable(state, isa, t)) return;
  const VecDotKernels& k = vec_dot_kernels(isa);
  const int64_t rows = 4096;
  std::mt19937 rng(2);
  const auto w = random_weights(t, rows, rng);
  const size_t rb = *dtype_bytes(t, kCols);
  std::vector<float> x(kCols), y(rows);
  std::normal_distribution<float> nd;
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> qx(*dtype_bytes(*vec_dot_act_type(t), kCols));
  const DotFn dot = k.dot_for(t);
  const QuantizeFn quantize = k.quantize_for(t);
  for (auto _ : state) {
    quantize(x.data(), qx.data(), kCols);
    for (int64_t r = 0; r < rows; ++r) y[r] = dot(w.data() + r * rb, qx.data(), kCols);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.size()));
}

#define SMOE_VEC_DOT_BENCH(T, ISA)                                \
  BENCHMARK_CAPTURE(BM_VecDotRow, T##_##ISA, DType::T, Isa::ISA); \
  BENCHMARK_CAPTURE(BM_MatVec, T##_##ISA, DType::T, Isa::ISA)->Unit(benchmark::kMillisecond)

#define SMOE_VEC_DOT_BENCH_ALL(T) \
  SMOE_VEC_DOT_BENCH(T, Scalar);  \
  SMOE_VEC_DOT_BENCH(T, Avx2);    \
  SMOE_VEC_DOT_BENCH(T, Avx512)

SMOE_VEC_DOT_BENCH_ALL(Q8_0);
SMOE_VEC_DOT_BENCH_ALL(Q4_0);
SMOE_VEC_DOT_BENCH_ALL(Q4_1);
SMOE_VEC_DOT_BENCH_ALL(Q5_0);
SMOE_VEC_DOT_BENCH_ALL(Q5_1);
SMOE_VEC_DOT_BENCH_ALL(Q2_K);
SMOE_VEC_DOT_BENCH_ALL(Q3_K);
SMOE_VEC_DOT_BENCH_ALL(Q4_K);
SMOE_VEC_DOT_BENCH_ALL(Q5_K);
SMOE_VEC_DOT_BENCH_ALL(Q6_K);

}  // namespace
}  // namespace smoe::quant
