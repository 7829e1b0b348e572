// Weight layouts other than the file's (Matrix::layout), and how to read a row of any layout.
//
// Rows8 holds Q4_0 rows interleaved by eight, in the bytes the eight rows took, so that a matrix
// can be changed in place. The group of rows 8g .. 8g + 7 starts at data + 8g·row_bytes; with
// nb = cols / 32 blocks per row it holds
//   at 128·b + 32·k + 4·i (b < nb, k < 4, i < 8): the bytes qs[4k .. 4k + 3] of row 8g + i's
//     block b (low nibbles: columns 4k .. 4k + 3, high nibbles: columns 16 + 4k .. 16 + 4k + 3);
//   at 128·nb + 16·b + 2·i: the f16 scale d of row 8g + i's block b.
// 32 bytes at 128·b + 32·k are then one AVX2 register with four columns of each of the eight rows
// (dword lane i = row i), and a group is read front to back as one stream. The AVX2 kernels read
// it without the transposes the file's layout needs at every call (kernels/cpu/avx2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/backend.h"
#include "quant/blocks.h"

namespace smoe {

// Whether w can take Rows8: Q4_0 in the file's layout, whole groups of eight rows, and rows of
// whole 512-column steps (as the small-batch kernels take them, kernels/cpu/gemv.h).
bool can_interleave(const Matrix& w);

// Rearranges w's bytes (writable at `bytes`, which is w.data) into Rows8 and sets w.layout.
// Needs can_interleave(w).
void interleave_rows8(Matrix& w, std::byte* bytes);

// Block b of row r of a Rows8 matrix, as the file holds it.
inline quant::BlockQ4_0 rows8_block(const Matrix& w, int64_t r, int64_t b) {
  const int64_t nb = w.cols / 32;
  const int i = static_cast<int>(r % 8);
  const std::byte* g = w.row(r - i);
  quant::BlockQ4_0 out;
  std::memcpy(&out.d, g + 128 * nb + 16 * b + 2 * i, 2);
  for (int k = 0; k < 4; ++k) std::memcpy(out.qs + 4 * k, g + 128 * b + 32 * k + 4 * i, 4);
  return out;
}

// Row r of w in the file's layout (w.row_bytes bytes at out), whatever w's layout.
void standard_row(const Matrix& w, int64_t r, std::byte* out);

// Row r of w as w.cols floats (the reference dequantizer's values), whatever w's layout.
void matrix_row_to_f32(const Matrix& w, int64_t r, float* dst);

}  // namespace smoe
