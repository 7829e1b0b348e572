// Reference quantizers: f32 rows → GGUF blocks. Legacy types round to the nearest level of a
// per-block scale; k-quants search each sub-block's scale (and min) for the least weighted
// squared error, then store the sub-block scales in 6 bits (4 for Q2_K) under one f16 scale.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace smoe::quant {

// True for the types quantize_row can write.
bool can_quantize(DType t);
// `n` floats → blocks of type `t` at `dst` (dtype_bytes(t, n) bytes). smoe::Error if `t` cannot
// be written or n is not a multiple of the block size.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace smoe::quant
