// Scalar reference dequantization of every supported dtype: the specification the fast kernels
// are tested against.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace smoe::quant {

// `n` weights of type `t` at `src` → f32. n must be a multiple of the block size (smoe::Error).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

}  // namespace smoe::quant
