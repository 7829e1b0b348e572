#include "kernels/layout.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"

namespace smoe {
namespace {

constexpr int kGroup = 8;
constexpr size_t kQuadBytes = 128, kScaleBytes = 16;  // per block of a group

}  // namespace

bool can_interleave(const Matrix& w) {
  return w.dtype == DType::Q4_0 && w.layout == MatrixLayout::Rows && w.rows % kGroup == 0 &&
         w.cols % 512 == 0 && w.row_bytes == static_cast<size_t>(w.cols / 32) * 18;
}

void interleave_rows8(Matrix& w, std::byte* bytes) {
  if (!can_interleave(w) || bytes != w.data)
    fail("interleave_rows8: a {} matrix of {} × {} in layout {} cannot be interleaved by eight",
         dtype_name(w.dtype), w.rows, w.cols, static_cast<int>(w.layout));
  const int64_t nb = w.cols / 32;
  const size_t group_bytes = kGroup * w.row_bytes;
  std::vector<std::byte> rows(group_bytes);
  for (int64_t r = 0; r < w.rows; r += kGroup) {
    std::byte* g = bytes + static_cast<size_t>(r) * w.row_bytes;
    std::memcpy(rows.data(), g, group_bytes);
    for (int i = 0; i < kGroup; ++i)
      for (int64_t b = 0; b < nb; ++b) {
        quant::BlockQ4_0 blk;
        std::memcpy(&blk, rows.data() + i * w.row_bytes + b * sizeof(blk), sizeof(blk));
        std::memcpy(g + kQuadBytes * nb + kScaleBytes * b + 2 * i, &blk.d, 2);
        for (int k = 0; k < 4; ++k)
          std::memcpy(g + kQuadBytes * b + 32 * k + 4 * i, blk.qs + 4 * k, 4);
      }
  }
  w.layout = MatrixLayout::Rows8;
}

void standard_row(const Matrix& w, int64_t r, std::byte* out) {
  if (w.layout == MatrixLayout::Rows) {
    std::memcpy(out, w.row(r), w.row_bytes);
    return;
  }
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const quant::BlockQ4_0 blk = rows8_block(w, r, b);
    std::memcpy(out + b * sizeof(blk), &blk, sizeof(blk));
  }
}

void matrix_row_to_f32(const Matrix& w, int64_t r, float* dst) {
  if (w.layout == MatrixLayout::Rows) return row_to_f32(w.dtype, w.row(r), dst, w.cols);
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const quant::BlockQ4_0 blk = rows8_block(w, r, b);
    row_to_f32(DType::Q4_0, reinterpret_cast<const std::byte*>(&blk), dst + 32 * b, 32);
  }
}

}  // namespace smoe
