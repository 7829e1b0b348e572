#include "kernels/backend.h"

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/layout.h"
#include "kernels/ops.h"
#include "kernels/ref/ref_backend.h"

namespace smoe {

VecOps Backend::vec_ops() const {
  return {.scores_group = ops::scores_group,
          .wsum_group = ops::wsum_group,
          .silu_mul = ops::silu_mul,
          .softmax = ops::softmax,
          .scores_group_f16 = ops::scores_group_f16,
          .wsum_group_f16 = ops::wsum_group_f16,
          .scores_group_q8_0 = ops::scores_group_q8_0,
          .wsum_group_q8_0 = ops::wsum_group_q8_0,
          .to_f16 = ops::to_f16,
          .to_q8_0 = ops::to_q8_0};
}

void Backend::matmul_swiglu(const Matrix& gate, const Matrix& up, const float* x, int64_t n,
                            float* h, float* u, ThreadPool& pool) {
  const Matrix* ws[] = {&gate, &up};
  float* ys[] = {h, u};
  matmul_multi(ws, ys, 2, x, n, pool);
  const auto silu_mul = vec_ops().silu_mul;
  const int64_t rows = gate.rows;
  pool.parallel_for(n, kMinSharedWork / rows, [&](int, int64_t b, int64_t e) {
    silu_mul(h + b * rows, u + b * rows, (e - b) * rows);
  });
}

bool backend_isa_supported(BackendIsa isa) {
  switch (isa) {
    case BackendIsa::Scalar:
    case BackendIsa::Auto:
      return true;
    case BackendIsa::Amx:
      return cpu::amx_usable();
    default:
      return static_cast<int>(isa) <= static_cast<int>(cpu::detect_isa());
  }
}

MatrixLayout preferred_layout(const Matrix& w) {
  const bool avx2_only = cpu::detect_isa() == cpu::Isa::Avx2;
  return avx2_only && can_interleave(w) ? MatrixLayout::Rows8 : MatrixLayout::Rows;
}

std::unique_ptr<Backend> make_backend(const BackendOptions& opts) {
  if (opts.reference) return std::make_unique<RefBackend>(opts);
  BackendIsa isa = opts.isa;
  if (isa == BackendIsa::Auto)
    isa = cpu::amx_usable() ? BackendIsa::Amx : static_cast<BackendIsa>(cpu::detect_isa());
  switch (isa) {
    case BackendIsa::Amx:
    case BackendIsa::Avx512: {
      const bool vnni = quant::isa_supported(quant::Isa::Avx512);
      const bool amx = isa == BackendIsa::Amx && cpu::amx_usable();
      return std::make_unique<CpuBackend>(
          cpu::float_kernels_avx512(),
          quant::vec_dot_kernels(vnni ? quant::Isa::Avx512 : quant::Isa::Avx2),
          vnni ? &cpu::strip_kernels_avx512() : nullptr,
          !vnni ? nullptr
          : amx ? &cpu::gemv_kernels_amx()
                : &cpu::gemv_kernels_avx512(),
          opts, amx ? &cpu::tile_gemm_kernels_amx() : nullptr);
    }
    case BackendIsa::Avx2:
      return std::make_unique<CpuBackend>(
          cpu::float_kernels_avx2(), quant::vec_dot_kernels(quant::Isa::Avx2),
          &cpu::strip_kernels_avx2(), &cpu::gemv_kernels_avx2(), opts);
    default:
      return std::make_unique<RefBackend>(opts);
  }
}

}  // namespace smoe
