#include "kernels/cpu/cpu_backend.h"

#include "core/error.h"
#include "core/thread_pool.h"

namespace smoe {

CpuBackend::CpuBackend(const cpu::FloatKernels& k, const cpu::QuantKernels& q,
                       const BackendOptions& opts)
    : k_(k),
      q_(q),
      act_(static_cast<size_t>(opts.max_rows * (opts.max_cols / 32 + 1))),
      name_(std::string("cpu-") + k.isa),
      scratch_(static_cast<size_t>(opts.n_threads < 1 ? 1 : opts.n_threads),
               std::vector<float>(static_cast<size_t>(opts.max_cols))) {}

// Quantized weights with an integer kernel: the activations are quantized to 8 bits once, then
// every weight row is dotted with every token's blocks.
void CpuBackend::matmul_integer(const Matrix& w, cpu::QuantDotFn dot, const float* x, int64_t n,
                                float* y, ThreadPool& pool) {
  const int64_t nb = w.cols / 32;
  pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      cpu::quantize_act_q8(x + i * w.cols, act_.data() + i * nb, w.cols);
  });
  const cpu::QuantDot4Fn dot4 = q_.x4_for_dtype(w.dtype);
  pool.parallel_for(w.rows, [&](int, int64_t r0, int64_t r1) {
    float out[4];
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* wr = w.row(r);
      int64_t i = 0;
      for (; dot4 && i + 4 <= n; i += 4) {  // four tokens per pass over the weight row
        dot4(wr, act_.data() + i * nb, nb, w.cols, out);
        for (int j = 0; j < 4; ++j) y[(i + j) * w.rows + r] = out[j];
      }
      for (; i < n; ++i) y[i * w.rows + r] = dot(wr, act_.data() + i * nb, w.cols);
    }
  });
}

// Other quantized weights: each row is expanded once into the thread's scratch, then dotted with
// every token of the batch by the f32 kernel.
void CpuBackend::matmul_dequantized(const Matrix& w, const float* x, int64_t n, float* y,
                                    ThreadPool& pool) {
  if (w.cols > static_cast<int64_t>(scratch_[0].size()) ||
      pool.size() > static_cast<int>(scratch_.size()))
    fail("cpu backend: matmul with {} columns on {} threads exceeds its scratch", w.cols,
         pool.size());
  pool.parallel_for(w.rows, [&](int t, int64_t r0, int64_t r1) {
    float* row = scratch_[static_cast<size_t>(t)].data();
    const auto* rb = reinterpret_cast<const std::byte*>(row);
    for (int64_t r = r0; r < r1; ++r) {
      row_to_f32(w.dtype, w.row(r), row, w.cols);
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = k_.dot_f32(rb, x + i * w.cols, w.cols);
    }
  });
}

void CpuBackend::matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const cpu::DotFn dot = k_.for_dtype(w.dtype);
  if (!dot) {
    const cpu::QuantDotFn qdot = q_.for_dtype(w.dtype);
    if (qdot && w.cols % 32 == 0 && n * (w.cols / 32) <= static_cast<int64_t>(act_.size()))
      matmul_integer(w, qdot, x, n, y, pool);
    else
      matmul_dequantized(w, x, n, y, pool);
    return;
  }
  // Each thread owns a contiguous block of output rows; a weight row is read once from memory
  // and reused from cache for every token of the batch.
  pool.parallel_for(w.rows, [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* wr = w.row(r);
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = dot(wr, x + i * w.cols, w.cols);
    }
  });
}

}  // namespace smoe
