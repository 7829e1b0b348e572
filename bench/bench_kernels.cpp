// Micro-benchmarks of the matmul kernels: a 4096-row × 4096-column weight matrix times 1, 2, 3, 4,
// 8, 16, 64 and 128 activation rows (tokens), per dtype and instruction set. Reports weight bytes
// streamed per second and multiply-adds per second (MAC/s); quantized types take the small-batch
// kernels where they have one for the batch size (AVX-512: Q4_0, Q4_K and Q6_K 1-8 tokens, Q8_0
// 1-4; AMX: Q4_0, Q4_K and Q8_0 5-8, the AVX-512 ones below; AVX2: Q4_0, Q4_K and Q6_K 1-8,
// Q8_0 1-4), else per-row dot products for 1-2 tokens and the strip GEMM from 3. These matrices (9
// MB of Q4_0) stay in a large L3; the AMX ranges were set on matrices read from memory. The
// attention cases (BM_Attention) time one key/value head's q·k and Σ p·v over a long context, as
// the cache stores its rows (f32 today, paged f16 or Q8_0).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/strip.h"
#include "kernels/layout.h"
#include "kernels/ops.h"
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

// A rows × cols matrix of normal weights quantized to t (in `layout`), copied until the copies
// fill 128 MiB (four times a 32 MiB L3) and at least `min_copies`: taken in turn, they are read
// from memory as in decoding. Returns the copies; `bytes` is one copy's size.
std::vector<std::byte> matrix_copies(DType t, int64_t rows, int64_t cols, std::mt19937& rng,
                                     size_t min_copies, size_t& bytes,
                                     MatrixLayout layout = MatrixLayout::Rows) {
  std::normal_distribution<float> nd;
  std::vector<float> row(cols);
  const size_t rb = *dtype_bytes(t, cols);
  bytes = rb * rows;
  const size_t copies = std::max(min_copies, ((size_t{128} << 20) + bytes - 1) / bytes);
  std::vector<std::byte> w(bytes * copies);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  if (layout == MatrixLayout::Rows8) {
    Matrix m{t, rows, cols, w.data(), rb};
    interleave_rows8(m, w.data());
  }
  for (size_t c = 1; c < copies; ++c) std::copy_n(w.data(), bytes, w.data() + c * bytes);
  return w;
}

// As BM_Matmul, on the shape of a Mixtral expert's w1 (14336 × 4096) read from memory, as in
// decoding: enough copies to fill 128 MiB (four times a 32 MiB L3) are taken in turn, on 2
// threads. range(0) tokens. Which path each batch size takes decides these numbers most.
void BM_MatmulMemory(benchmark::State& state, DType t, BackendIsa isa,
                     MatrixLayout layout = MatrixLayout::Rows) {
  if (!backend_isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const int64_t rows = 14336, cols = 4096, n = state.range(0);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * cols), y(n * rows);
  for (float& v : x) v = nd(rng);
  const size_t rb = *dtype_bytes(t, cols);
  size_t bytes = 0;
  const std::vector<std::byte> w = matrix_copies(t, rows, cols, rng, 1, bytes, layout);
  const size_t copies = w.size() / bytes;
  ThreadPool pool(2);
  auto backend = make_backend({.max_cols = cols,
                               .max_rows = n,
                               .n_threads = 2,
                               .reference = isa == BackendIsa::Scalar,
                               .isa = isa});
  size_t c = 0;
  for (auto _ : state) {
    const Matrix m{t, rows, cols, w.data() + bytes * c, rb, layout};
    c = (c + 1) % copies;
    backend->matmul(m, x.data(), n, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(rows * cols * n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

#define SMOE_BENCH_MEMORY(T, ISA)                                          \
  BENCHMARK_CAPTURE(BM_MatmulMemory, T##_##ISA, DType::T, BackendIsa::ISA) \
      ->DenseRange(1, 8)                                                   \
      ->Arg(16)                                                            \
      ->Unit(benchmark::kMillisecond)

SMOE_BENCH_MEMORY(Q4_0, Avx2);
// Q4_0 interleaved by eight rows at load (kernels/layout.h), as AVX2 machines run it.
BENCHMARK_CAPTURE(BM_MatmulMemory, Q4_0_Rows8_Avx2, DType::Q4_0, BackendIsa::Avx2,
                  MatrixLayout::Rows8)
    ->DenseRange(1, 8)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond);
SMOE_BENCH_MEMORY(Q8_0, Avx2);
SMOE_BENCH_MEMORY(Q4_K, Avx2);
SMOE_BENCH_MEMORY(Q6_K, Avx2);
SMOE_BENCH_MEMORY(Q4_0, Avx512);
SMOE_BENCH_MEMORY(Q4_K, Avx512);
SMOE_BENCH_MEMORY(Q6_K, Avx512);
SMOE_BENCH_MEMORY(Q8_0, Avx512);

// An expert's gate and up products and SiLU·mul (14336 × 4096 each, read from memory as in
// decoding: copies filling 128 MiB taken in turn, 2 threads), fused (matmul_swiglu) against the
// unfused steps (matmul_multi, then SiLU·mul over the products). range(0) tokens, range(1) fused.
// Run with --benchmark_enable_random_interleaving=true --benchmark_repetitions=N to compare them
// round-robin.
void BM_SwiGluMemory(benchmark::State& state, DType t, BackendIsa isa) {
  if (!backend_isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const int64_t rows = 14336, cols = 4096, n = state.range(0);
  const bool fused = state.range(1) != 0;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * cols), h(n * rows), u(n * rows);
  for (float& v : x) v = nd(rng);
  const size_t rb = *dtype_bytes(t, cols);
  size_t bytes = 0;
  const std::vector<std::byte> w = matrix_copies(t, rows, cols, rng, 4, bytes);
  const size_t copies = w.size() / bytes;
  ThreadPool pool(2);
  auto backend = make_backend({.max_cols = cols, .max_rows = n, .n_threads = 2, .isa = isa});
  size_t c = 0;
  for (auto _ : state) {
    const Matrix gate{t, rows, cols, w.data() + bytes * c, rb};
    const Matrix up{t, rows, cols, w.data() + bytes * ((c + 1) % copies), rb};
    c = (c + 2) % copies;
    if (fused)
      backend->matmul_swiglu(gate, up, x.data(), n, h.data(), u.data(), pool);
    else  // the interface's default: both products, then SiLU·mul
      backend->Backend::matmul_swiglu(gate, up, x.data(), n, h.data(), u.data(), pool);
    benchmark::DoNotOptimize(h.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 *
                          static_cast<int64_t>(bytes));
}

#define SMOE_BENCH_SWIGLU(T, ISA)                                          \
  BENCHMARK_CAPTURE(BM_SwiGluMemory, T##_##ISA, DType::T, BackendIsa::ISA) \
      ->ArgsProduct({{1, 2, 16, 64}, {0, 1}})                              \
      ->ArgNames({"tokens", "fused"})                                      \
      ->Unit(benchmark::kMillisecond)

SMOE_BENCH_SWIGLU(Q4_0, Avx2);
SMOE_BENCH_SWIGLU(Q4_K, Avx2);
SMOE_BENCH_SWIGLU(Q4_0, Avx512);
SMOE_BENCH_SWIGLU(Q4_K, Avx512);
SMOE_BENCH_SWIGLU(Q8_0, Avx512);

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

// How the cache stores the rows that BM_Attention reads: F32, today's cache, position after
// position, each the kv_dim floats of all heads; F32Packed, one head's rows of hd floats back to
// back (no cache stores them so; the best an f32 row can do); F16Paged and Q8_0Paged, the paged
// cache: blocks of 16 positions in shuffled order through memory, each block head-major (a
// head's 16 rows of hd values together, then the next head's).
enum class KvRows { F32, F32Packed, F16Paged, Q8_0Paged };

// Mixtral's shape: head_dim 128, 4 query heads a key/value head, kv_dim 1024; the rows of kv
// head 3.
constexpr int64_t kHd = 128, kGroup = 4, kKvDim = 1024, kHead = 3, kPage = 16;

// n random keys (or values) of kv_dim values each, stored as `layout` says, and the row of
// kv head kHead of each position.
struct KvStore {
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<quant::BlockQ8_0> q8;
  std::vector<const float*> f32_rows;
  std::vector<const uint16_t*> f16_rows;
  std::vector<const quant::BlockQ8_0*> q8_rows;
  int64_t row_bytes = 0;  // of one head's row

  KvStore(KvRows layout, int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd;
    std::vector<int64_t> page(n / kPage);  // position j lives in block page[j / kPage]
    std::iota(page.begin(), page.end(), 0);
    std::shuffle(page.begin(), page.end(), rng);
    // Element offset of position j's row of head h.
    const auto at = [&](int64_t j, int64_t h) {
      return page[j / kPage] * kPage * kKvDim + h * kPage * kHd + j % kPage * kHd;
    };
    std::vector<float> x(kKvDim);
    for (int64_t j = 0; j < n; ++j) {
      for (float& v : x) v = nd(rng);
      if (layout == KvRows::F32) {
        f32.insert(f32.end(), x.begin(), x.end());
      } else if (layout == KvRows::F32Packed) {
        f32.insert(f32.end(), x.begin() + kHead * kHd, x.begin() + (kHead + 1) * kHd);
      } else if (layout == KvRows::F16Paged) {
        f16.resize(n * kKvDim);
        for (int64_t h = 0; h < kKvDim / kHd; ++h)
          ops::to_f16(x.data() + h * kHd, f16.data() + at(j, h), kHd);
      } else {
        q8.resize(n * kKvDim / quant::kQK);
        for (int64_t h = 0; h < kKvDim / kHd; ++h)
          ops::to_q8_0(x.data() + h * kHd, q8.data() + at(j, h) / quant::kQK, kHd);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      if (layout == KvRows::F32) f32_rows.push_back(f32.data() + j * kKvDim + kHead * kHd);
      if (layout == KvRows::F32Packed) f32_rows.push_back(f32.data() + j * kHd);
      if (layout == KvRows::F16Paged) f16_rows.push_back(f16.data() + at(j, kHead));
      if (layout == KvRows::Q8_0Paged) q8_rows.push_back(q8.data() + at(j, kHead) / quant::kQK);
    }
    row_bytes = layout == KvRows::F16Paged    ? kHd * 2
                : layout == KvRows::Q8_0Paged ? kHd / quant::kQK * sizeof(quant::BlockQ8_0)
                                              : kHd * 4;
  }
};

// One key/value head's attention over n = range(0) positions: the scores q·k of every key, then
// Σ p·v over every value (softmax left out), for the 4 query heads that share it. range(1) = 1
// reads the rows from memory: a 64 MiB buffer is swept between iterations, outside the timing,
// as the other layers of a decode step would. Bytes: the keys' and values' bytes read.
void BM_Attention(benchmark::State& state, KvRows layout, BackendIsa isa) {
  if (!backend_isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const int64_t n = state.range(0);
  const bool cold = state.range(1) != 0;
  std::mt19937 rng(1);
  const KvStore keys(layout, n, rng), vals(layout, n, rng);
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> u(0.0f, 2.0f / static_cast<float>(n));
  std::vector<float> q(kGroup * kHd), scores(kGroup * n), out(kGroup * kHd);
  for (float& v : q) v = nd(rng);
  for (float& v : scores) v = u(rng);  // stands for the probabilities Σ p·v weighs
  const VecOps ops = make_backend({.reference = isa == BackendIsa::Scalar, .isa = isa})->vec_ops();
  std::vector<char> sweep(cold ? 64 << 20 : 0);
  const float scale = 0.088f;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      for (size_t i = 0; i < sweep.size(); i += 64) sweep[i] = static_cast<char>(sweep[i] + 1);
      benchmark::ClobberMemory();
      state.ResumeTiming();
    }
    if (layout == KvRows::F16Paged) {
      ops.scores_group_f16(q.data(), kGroup, keys.f16_rows.data(), n, kHd, scale, scores.data(), n);
      ops.wsum_group_f16(scores.data(), n, kGroup, vals.f16_rows.data(), n, kHd, out.data());
    } else if (layout == KvRows::Q8_0Paged) {
      ops.scores_group_q8_0(q.data(), kGroup, keys.q8_rows.data(), n, kHd, scale, scores.data(), n);
      ops.wsum_group_q8_0(scores.data(), n, kGroup, vals.q8_rows.data(), n, kHd, out.data());
    } else {
      ops.scores_group(q.data(), kGroup, keys.f32_rows.data(), n, kHd, scale, scores.data(), n);
      ops.wsum_group(scores.data(), n, kGroup, vals.f32_rows.data(), n, kHd, out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * n * keys.row_bytes);
}

#define SMOE_BENCH_ATTENTION(ROWS, ISA)                                        \
  BENCHMARK_CAPTURE(BM_Attention, ROWS##_##ISA, KvRows::ROWS, BackendIsa::ISA) \
      ->ArgsProduct({{4096, 32768}, {0, 1}})                                   \
      ->ArgNames({"n", "cold"})                                                \
      ->Unit(benchmark::kMicrosecond)

SMOE_BENCH_ATTENTION(F32, Avx2);
SMOE_BENCH_ATTENTION(F32Packed, Avx2);
SMOE_BENCH_ATTENTION(F16Paged, Avx2);
SMOE_BENCH_ATTENTION(Q8_0Paged, Avx2);
SMOE_BENCH_ATTENTION(F32, Avx512);
SMOE_BENCH_ATTENTION(F32Packed, Avx512);
SMOE_BENCH_ATTENTION(F16Paged, Avx512);
SMOE_BENCH_ATTENTION(Q8_0Paged, Avx512);

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
