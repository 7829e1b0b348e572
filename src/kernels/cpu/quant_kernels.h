// Integer dot products for quantized weights: activations are quantized on the fly to 8-bit
// blocks (ActQ8, one per 32 values) and multiplied with the weight blocks in integer SIMD.
// One table per instruction set; a null entry means "not here": the backend falls back to
// expanding the row to f32.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace smoe::cpu {

// 32 activations as int8 with their scale and their sum (used by offset-encoded weights).
struct ActQ8 {
  float d;
  int32_t sum;
  int8_t qs[32];
};

// Quantizes n (a multiple of 32) floats to n/32 ActQ8 blocks (round to nearest, d = amax/127).
void quantize_act_q8(const float* x, ActQ8* out, int64_t n);

// sum over the row of w·x for one weight row of n values against quantized activations.
using QuantDotFn = float (*)(const void* w, const ActQ8* x, int64_t n);

// The same for four activation rows at once (x, x + stride, ...): each weight block is unpacked
// once for the four. out[j] = row · x_j.
using QuantDot4Fn = void (*)(const void* w, const ActQ8* x, int64_t stride, int64_t n, float* out);

struct QuantKernels {
  const char* isa;
  QuantDotFn q4_0;
  QuantDotFn q8_0;
  QuantDot4Fn q4_0_x4;
  QuantDot4Fn q8_0_x4;
  QuantDotFn for_dtype(DType t) const {
    return t == DType::Q4_0 ? q4_0 : t == DType::Q8_0 ? q8_0 : nullptr;
  }
  QuantDot4Fn x4_for_dtype(DType t) const {
    return t == DType::Q4_0 ? q4_0_x4 : t == DType::Q8_0 ? q8_0_x4 : nullptr;
  }
};

const QuantKernels& quant_kernels_scalar();
const QuantKernels& quant_kernels_avx2();
const QuantKernels& quant_kernels_avx512();  // AVX-512 VL + VNNI (256-bit dpbusd)

}  // namespace smoe::cpu
