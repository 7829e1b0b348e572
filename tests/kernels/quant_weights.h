// Random normal weights quantized to a block type, for the kernel tests.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/backend.h"
#include "quant/quantize.h"

namespace smoe::test {

struct QuantWeights {
  std::vector<float> f;      // the float weights (rows × cols)
  std::vector<std::byte> q;  // their quantized rows
  Matrix m;                  // q as a matrix
};

// rows × cols weights of type t drawn from N(0, 1) by rng.
inline QuantWeights make_quant_weights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  QuantWeights w;
  w.f.resize(static_cast<size_t>(rows * cols));
  for (float& v : w.f) v = nd(rng);
  const size_t rb = *dtype_bytes(t, cols);
  w.q.resize(rb * rows);
  for (int64_t r = 0; r < rows; ++r)
    quant::quantize_row(t, &w.f[r * cols], w.q.data() + r * rb, cols);
  w.m = Matrix{t, rows, cols, w.q.data(), rb};
  return w;
}

}  // namespace smoe::test
