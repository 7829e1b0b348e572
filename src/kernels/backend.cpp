#include "kernels/backend.h"

#include "kernels/cpu/cpu_backend.h"
#include "kernels/ops.h"
#include "kernels/ref/ref_backend.h"

namespace smoe {

VecOps Backend::vec_ops() const {
  return {ops::scores_group, ops::wsum_group, ops::silu_mul, ops::softmax};
}

std::unique_ptr<Backend> make_backend(const BackendOptions& opts) {
  if (opts.reference) return std::make_unique<RefBackend>(opts);
  switch (opts.isa == BackendIsa::Auto ? static_cast<BackendIsa>(cpu::detect_isa()) : opts.isa) {
    case BackendIsa::Avx512: {
      const bool vnni = quant::isa_supported(quant::Isa::Avx512);
      return std::make_unique<CpuBackend>(
          cpu::float_kernels_avx512(),
          quant::vec_dot_kernels(vnni ? quant::Isa::Avx512 : quant::Isa::Avx2),
          vnni ? &cpu::strip_kernels_avx512() : nullptr,
          vnni ? &cpu::gemv_kernels_avx512() : nullptr, opts);
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
