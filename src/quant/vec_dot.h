// Integer dot products of a quantized weight row with activations quantized on the fly: the
// scalar reference that the SIMD kernels (src/quant/avx2, src/quant/avx512) are tested against.
//
// Activations are quantized per block to 8 bits, to the block type paired with the weight type:
//   Q8_0 for Q4_0, Q5_0, Q8_0;  Q8_1 (with d·Σq) for Q4_1, Q5_1;  Q8_K (with the sums of each
//   16 values) for Q2_K..Q6_K.
// Conventions of the activation quantizers (the SIMD versions reproduce them bit for bit):
//   Q8_0 / Q8_1: d = amax/127 (stored f16), q = round_half_even(x / d computed as x · (1/d)).
//   Q8_K:        d = 1/(127/amax) (stored f32), q = round_half_even(x · 127/amax).
// Every dot product is exact in integers within a block; floats enter only per block.
#pragma once

#include <cstdint>
#include <optional>

#include "core/dtype.h"

namespace smoe::quant {

// The activation block type (Q8_0, Q8_1 or Q8_K) that weight type `wtype` is multiplied with;
// nullopt when `wtype` has no integer dot product.
std::optional<DType> vec_dot_act_type(DType wtype);

// n floats → n / block-size activation blocks of type `act` (Q8_0, Q8_1 or Q8_K) at `dst`.
// smoe::Error for another type or an n that is not a whole number of blocks.
void quantize_activations(DType act, const float* x, void* dst, int64_t n);

// Σ w[i]·x[i] over one row of n weights of type `wtype` and the n activations `qact`, quantized
// to vec_dot_act_type(wtype). smoe::Error for a type without a dot product or a partial block.
float vec_dot(DType wtype, const void* wrow, const void* qact, int64_t n);

// The same without checks, per type (n a multiple of the block size): the scalar table entries.
namespace ref {
void quantize_q8_0(const float* x, void* dst, int64_t n);
void quantize_q8_1(const float* x, void* dst, int64_t n);
void quantize_q8_k(const float* x, void* dst, int64_t n);
float dot_q4_0(const void* w, const void* a, int64_t n);
float dot_q4_1(const void* w, const void* a, int64_t n);
float dot_q5_0(const void* w, const void* a, int64_t n);
float dot_q5_1(const void* w, const void* a, int64_t n);
float dot_q8_0(const void* w, const void* a, int64_t n);
float dot_q2_k(const void* w, const void* a, int64_t n);
float dot_q3_k(const void* w, const void* a, int64_t n);
float dot_q4_k(const void* w, const void* a, int64_t n);
float dot_q5_k(const void* w, const void* a, int64_t n);
float dot_q6_k(const void* w, const void* a, int64_t n);
}  // namespace ref

}  // namespace smoe::quant
