// The SIMD CPU backend: float-weight matmuls through the chosen ISA's kernels; quantized rows are
// expanded to f32 once per row and then take the same kernel.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/quant_kernels.h"

namespace smoe {

class CpuBackend : public Backend {
 public:
  CpuBackend(const cpu::FloatKernels& k, const cpu::QuantKernels& q, const BackendOptions& opts);
  const char* name() const override { return name_.c_str(); }
  void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) override;

 private:
  void matmul_dequantized(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool);
  void matmul_integer(const Matrix& w, cpu::QuantDotFn dot, const float* x, int64_t n, float* y,
                      ThreadPool& pool);
  const cpu::FloatKernels& k_;
  const cpu::QuantKernels& q_;
  std::vector<cpu::ActQ8> act_;  // (max_rows, max_cols / 32) quantized activations
  std::string name_;
  std::vector<std::vector<float>> scratch_;  // one row per thread
};

}  // namespace smoe
