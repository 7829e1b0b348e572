// Dot products of an f32 activation row with a weight row of a float dtype (f32, f16, bf16),
// one table per instruction set. The table is chosen at run time from the CPU's features.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace smoe::cpu {

// sum_i w[i] * x[i] for `n` elements; `w` may be unaligned.
using DotFn = float (*)(const std::byte* w, const float* x, int64_t n);

struct FloatKernels {
  const char* isa;
  DotFn dot_f32;
  DotFn dot_f16;
  DotFn dot_bf16;
  // Attention over a group of query heads sharing a key/value head: ops::scores_group and
  // ops::wsum_group.
  void (*scores_group)(const float* q, int g, const float* const* keys, int64_t n, int64_t hd,
                       float scale, float* scores, int64_t s_stride);
  void (*wsum_group)(const float* p, int64_t p_stride, int g, const float* const* vals, int64_t n,
                     int64_t hd, float* out);
  void (*silu_mul)(float* a, const float* b, int64_t n);  // a = silu(a)·b (ops::silu_mul)
  void (*softmax)(float* x, int64_t n);                   // in place (ops::softmax)
  DotFn for_dtype(DType t) const {
    return t == DType::F32    ? dot_f32
           : t == DType::F16  ? dot_f16
           : t == DType::BF16 ? dot_bf16
                              : nullptr;
  }
};

const FloatKernels& float_kernels_avx2();
const FloatKernels& float_kernels_avx512();

enum class Isa { Scalar, Avx2, Avx512 };
// The best ISA this CPU runs (AVX-512 needs F, BW, VL; AVX2 needs FMA and F16C too).
Isa detect_isa();
const char* isa_name(Isa isa);
bool has_avx512_vnni();
// Whether AMX int8 tiles can run here: the CPU has AMX-TILE and AMX-INT8 besides AVX-512 VNNI,
// and the operating system granted this process the tile state (asked once, on the first call).
bool amx_usable();

}  // namespace smoe::cpu
