// The SIMD CPU backend: float-weight matmuls through the chosen ISA's kernels; anything it does
// not handle goes to the reference.
#pragma once

#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/ref/ref_backend.h"

namespace smoe {

class CpuBackend : public Backend {
 public:
  CpuBackend(const cpu::FloatKernels& k, const BackendOptions& opts);
  const char* name() const override { return name_.c_str(); }
  void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) override;

 private:
  const cpu::FloatKernels& k_;
  std::string name_;
  RefBackend ref_;
};

}  // namespace smoe
