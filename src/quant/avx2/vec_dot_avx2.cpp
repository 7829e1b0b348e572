// AVX2 quantized dot products: int8 products through maddubs (u8 × s8 → s16) and madd (→ s32).
#include <immintrin.h>

#include "quant/dispatch.h"
#include "quant/x86/vec_dot_body.h"

namespace smoe::quant {
namespace {

struct Avx2Ops {
  static __m256i dot_u8s8(__m256i acc, __m256i a, __m256i b) {
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
  }
  static __m256i madd16(__m256i acc, __m256i a, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
  }
};

constexpr size_t idx(DType t) {
  return static_cast<size_t>(t);
}

constexpr VecDotKernels kAvx2 = [] {
  VecDotKernels k;
  k.isa = Isa::Avx2;
  k.dot[idx(DType::Q4_0)] = dot_q4_0<Avx2Ops>;
  k.dot[idx(DType::Q4_1)] = dot_q4_1<Avx2Ops>;
  k.dot[idx(DType::Q5_0)] = dot_q5_0<Avx2Ops>;
  k.dot[idx(DType::Q5_1)] = dot_q5_1<Avx2Ops>;
  k.dot[idx(DType::Q8_0)] = dot_q8_0<Avx2Ops>;
  k.dot[idx(DType::Q2_K)] = dot_q2_k<Avx2Ops>;
  k.dot[idx(DType::Q3_K)] = dot_q3_k<Avx2Ops>;
  k.dot[idx(DType::Q4_K)] = dot_q4_k<Avx2Ops>;
  k.dot[idx(DType::Q5_K)] = dot_q5_k<Avx2Ops>;
  k.dot[idx(DType::Q6_K)] = dot_q6_k<Avx2Ops>;
  k.quantize[idx(DType::Q8_0)] = quantize_q8_0;
  k.quantize[idx(DType::Q8_K)] = quantize_q8_k;
  return k;
}();

}  // namespace

const VecDotKernels& vec_dot_table_avx2() {
  return kAvx2;
}

}  // namespace smoe::quant
