// The scalar reference backend: the specification every fast kernel is tested against.
#pragma once

#include <vector>

#include "kernels/backend.h"

namespace smoe {

class RefBackend : public Backend {
 public:
  explicit RefBackend(const BackendOptions& opts);
  const char* name() const override { return "reference"; }
  void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) override;

 private:
  std::vector<std::vector<float>> scratch_;  // one row buffer per thread
};

}  // namespace smoe
