#include "kernels/backend.h"
#include "quant/dequantize.h"

namespace smoe {

bool dtype_supported(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void row_to_f32(DType t, const std::byte* src, float* dst, int64_t n) {
  quant::dequantize_row(t, src, dst, n);
}

}  // namespace smoe
