#include "kernels/backend.h"

#include "kernels/cpu/cpu_backend.h"
#include "kernels/ref/ref_backend.h"

namespace smoe {

std::unique_ptr<Backend> make_backend(const BackendOptions& opts) {
  if (opts.reference) return std::make_unique<RefBackend>(opts);
  switch (opts.isa == BackendIsa::Auto ? static_cast<BackendIsa>(cpu::detect_isa())
                                       : opts.isa) {
    case BackendIsa::Avx512:
      return std::make_unique<CpuBackend>(
          cpu::float_kernels_avx512(),
          cpu::has_avx512_vnni() ? cpu::quant_kernels_avx512() : cpu::quant_kernels_avx2(), opts);
    case BackendIsa::Avx2:
      return std::make_unique<CpuBackend>(cpu::float_kernels_avx2(), cpu::quant_kernels_avx2(), opts);
    default: return std::make_unique<RefBackend>(opts);
  }
}

}  // namespace smoe
