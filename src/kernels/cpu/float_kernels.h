// Dot products of an f32 activation row with a weight row of a float dtype (f32, f16, bf16),
// one table per instruction set. The table is chosen at run time from the CPU's features.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "quant/blocks.h"

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
  // The same attention over f16 and Q8_0 rows, and the cache's row converters (ops.h; the
  // converters bit-exact): kv_kernels_<isa>.cpp sets them (set_kv_kernels_<isa>).
  void (*scores_group_f16)(const float* q, int g, const uint16_t* const* keys, int64_t n,
                           int64_t hd, float scale, float* scores, int64_t s_stride) = nullptr;
  void (*wsum_group_f16)(const float* p, int64_t p_stride, int g, const uint16_t* const* vals,
                         int64_t n, int64_t hd, float* out) = nullptr;
  void (*scores_group_q8_0)(const float* q, int g, const quant::BlockQ8_0* const* keys, int64_t n,
                            int64_t hd, float scale, float* scores, int64_t s_stride) = nullptr;
  void (*wsum_group_q8_0)(const float* p, int64_t p_stride, int g,
                          const quant::BlockQ8_0* const* vals, int64_t n, int64_t hd,
                          float* out) = nullptr;
  void (*to_f16)(const float* x, uint16_t* y, int64_t n) = nullptr;
  void (*to_q8_0)(const float* x, quant::BlockQ8_0* y, int64_t n) = nullptr;
  DotFn for_dtype(DType t) const {
    return t == DType::F32    ? dot_f32
           : t == DType::F16  ? dot_f16
           : t == DType::BF16 ? dot_bf16
                              : nullptr;
  }
};

const FloatKernels& float_kernels_avx2();
const FloatKernels& float_kernels_avx512();
// Sets the f16 / Q8_0 attention kernels and the row converters of kv_kernels_<isa>.cpp in `k`.
void set_kv_kernels_avx2(FloatKernels& k);
void set_kv_kernels_avx512(FloatKernels& k);

enum class Isa { Scalar, Avx2, Avx512 };
// The best ISA this CPU runs (AVX-512 needs F, BW, VL; AVX2 needs FMA and F16C too).
Isa detect_isa();
const char* isa_name(Isa isa);
bool has_avx512_vnni();
// Whether the CPU is AMD's (the vendor string of cpuid leaf 0), where some prefetches go nearer.
bool cpu_is_amd();
// Whether AMX int8 tiles can run here: the CPU has AMX-TILE and AMX-INT8 besides AVX-512 VNNI,
// and the operating system granted this process the tile state (asked once, on the first call).
bool amx_usable();

}  // namespace smoe::cpu
