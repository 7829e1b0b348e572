// A non-owning view of a tensor stored somewhere else (an mmap'd file, a loaded buffer).
//
// Layout convention, everywhere in smoe: row-major with the outermost dimension first, as PyTorch
// prints shapes. A Linear weight is {out, in} (W[out][in], y = W x); merged experts are
// {n_experts, out, in}. GGUF lists dimensions innermost first (ne[0] = in); readers reverse them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace smoe {

struct TensorView {
  std::string name;  // name as stored in the file
  std::string file;  // path of the file it came from (for error messages)
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  uint64_t file_offset = 0;  // where `data` starts in `file` (for positioned reads)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }  // innermost dimension
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  size_t row_bytes() const { return rows() == 0 ? 0 : nbytes / static_cast<size_t>(rows()); }
  const std::byte* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
};

// "[4096, 32000]"
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace smoe
