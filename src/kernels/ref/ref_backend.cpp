#include "kernels/ref/ref_backend.h"

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/layout.h"
#include "kernels/ops.h"

namespace smoe {

RefBackend::RefBackend(const BackendOptions& opts)
    : scratch_(static_cast<size_t>(opts.n_threads < 1 ? 1 : opts.n_threads),
               std::vector<float>(static_cast<size_t>(opts.max_cols))) {}

void RefBackend::matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  if (w.cols > static_cast<int64_t>(scratch_[0].size()) ||
      pool.size() > static_cast<int>(scratch_.size()))
    fail("reference backend: matmul with {} columns on {} threads exceeds its scratch", w.cols,
         pool.size());
  pool.parallel_for(w.rows, [&](int t, int64_t r0, int64_t r1) {
    float* row = scratch_[static_cast<size_t>(t)].data();
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr = row;
      if (w.dtype == DType::F32) {
        wr = reinterpret_cast<const float*>(w.row(r));
      } else {
        matrix_row_to_f32(w, r, row);
      }
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = ops::dot(wr, x + i * w.cols, w.cols);
    }
  });
}

}  // namespace smoe
