#include "quant/dispatch.h"

#include "core/error.h"
#include "quant/vec_dot.h"

namespace smoe::quant {
namespace {

constexpr size_t idx(DType t) {
  return static_cast<size_t>(t);
}

constexpr VecDotKernels kScalar = [] {
  VecDotKernels k;
  k.isa = Isa::Scalar;
  k.dot[idx(DType::Q4_0)] = ref::dot_q4_0;
  k.dot[idx(DType::Q4_1)] = ref::dot_q4_1;
  k.dot[idx(DType::Q5_0)] = ref::dot_q5_0;
  k.dot[idx(DType::Q5_1)] = ref::dot_q5_1;
  k.dot[idx(DType::Q8_0)] = ref::dot_q8_0;
  k.dot[idx(DType::Q2_K)] = ref::dot_q2_k;
  k.dot[idx(DType::Q3_K)] = ref::dot_q3_k;
  k.dot[idx(DType::Q4_K)] = ref::dot_q4_k;
  k.dot[idx(DType::Q5_K)] = ref::dot_q5_k;
  k.dot[idx(DType::Q6_K)] = ref::dot_q6_k;
  k.quantize[idx(DType::Q8_0)] = ref::quantize_q8_0;
  k.quantize[idx(DType::Q8_1)] = ref::quantize_q8_1;
  k.quantize[idx(DType::Q8_K)] = ref::quantize_q8_k;
  return k;
}();

VecDotKernels fill_gaps(const VecDotKernels& own, const VecDotKernels& below) {
  VecDotKernels k = own;
  for (size_t t = 0; t < kNumDTypes; ++t) {
    if (!k.dot[t]) k.dot[t] = below.dot[t];
    if (!k.quantize[t]) k.quantize[t] = below.quantize[t];
  }
  return k;
}

struct Merged {
  VecDotKernels scalar, avx2, avx512;
};

Merged merge() {
  Merged m;
  m.scalar = kScalar;
  m.avx2 = fill_gaps(vec_dot_table_avx2(), m.scalar);
  m.avx512 = fill_gaps(vec_dot_table_avx512(), m.avx2);
  return m;
}

}  // namespace

QuantizeFn VecDotKernels::quantize_for(DType w) const {
  const auto act = vec_dot_act_type(w);
  return act ? quantize[idx(*act)] : nullptr;
}

const VecDotKernels& vec_dot_table_scalar() {
  return kScalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return avx2;
    case Isa::Avx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

const VecDotKernels& vec_dot_kernels(std::optional<Isa> isa) {
  const Isa want = isa.value_or(best_isa());
  if (!isa_supported(want))
    fail("quantized kernels: this CPU cannot run instruction set '{}'", isa_name(want));
  static const Merged merged = merge();
  return want == Isa::Avx512 ? merged.avx512 : want == Isa::Avx2 ? merged.avx2 : merged.scalar;
}

const VecDotKernels& vec_dot_kernels_own(Isa isa) {
  return isa == Isa::Avx512 ? vec_dot_table_avx512()
         : isa == Isa::Avx2 ? vec_dot_table_avx2()
                            : kScalar;
}

}  // namespace smoe::quant
