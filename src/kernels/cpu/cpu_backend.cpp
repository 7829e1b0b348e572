#include "kernels/cpu/cpu_backend.h"

#include "core/thread_pool.h"

namespace smoe {

CpuBackend::CpuBackend(const cpu::FloatKernels& k, const BackendOptions& opts)
    : k_(k), name_(std::string("cpu-") + k.isa), ref_(opts) {}

void CpuBackend::matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const cpu::DotFn dot = k_.for_dtype(w.dtype);
  if (!dot) {
    ref_.matmul(w, x, n, y, pool);
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
