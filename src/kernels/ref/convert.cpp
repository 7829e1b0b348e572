#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/backend.h"

namespace smoe {

bool dtype_supported(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

void row_to_f32(DType t, const std::byte* src, float* dst, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    default:
      fail("no kernel converts {} weights to f32", dtype_name(t));
  }
}

}  // namespace smoe
