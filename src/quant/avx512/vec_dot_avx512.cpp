// AVX-512 VNNI quantized dot products (256-bit, VL): dpbusd sums four u8 × s8 products into s32
// and dpwssd two s16 × s16 products, each in one instruction.
#include <immintrin.h>

#include "quant/dispatch.h"
#include "quant/x86/vec_dot_body.h"

namespace smoe::quant {
namespace {

struct VnniOps {
  static __m256i dot_u8s8(__m256i acc, __m256i a, __m256i b) {
    return _mm256_dpbusd_epi32(acc, a, b);
  }
  static __m256i madd16(__m256i acc, __m256i a, __m256i b) {
    return _mm256_dpwssd_epi32(acc, a, b);
  }
};

constexpr size_t idx(DType t) {
  return static_cast<size_t>(t);
}

constexpr VecDotKernels kAvx512 = [] {
  VecDotKernels k;
  k.isa = Isa::Avx512;
  k.dot[idx(DType::Q4_0)] = dot_q4_0<VnniOps>;
  k.dot[idx(DType::Q4_1)] = dot_q4_1<VnniOps>;
  k.dot[idx(DType::Q5_0)] = dot_q5_0<VnniOps>;
  k.dot[idx(DType::Q5_1)] = dot_q5_1<VnniOps>;
  k.dot[idx(DType::Q8_0)] = dot_q8_0<VnniOps>;
  k.dot[idx(DType::Q2_K)] = dot_q2_k<VnniOps>;
  k.dot[idx(DType::Q3_K)] = dot_q3_k<VnniOps>;
  k.dot[idx(DType::Q4_K)] = dot_q4_k<VnniOps>;
  k.dot[idx(DType::Q5_K)] = dot_q5_k<VnniOps>;
  k.dot[idx(DType::Q6_K)] = dot_q6_k<VnniOps>;
  k.quantize[idx(DType::Q8_0)] = quantize_q8_0;
  k.quantize[idx(DType::Q8_K)] = quantize_q8_k;
  return k;
}();

}  // namespace

const VecDotKernels& vec_dot_table_avx512() {
  return kAvx512;
}

}  // namespace smoe::quant
