// Element types of weights and activations, with the block geometry of the quantized GGUF formats.
// Numbering of the GGUF ("ggml") type ids is part of the file format and must not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace smoe {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q8_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  I8,
  I16,
  I32,
  I64,
  F64,
};

struct DTypeInfo {
  std::string_view name;  // "F32", "Q4_K", ... (GGUF spelling)
  int64_t block_size;     // elements per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
  uint32_t ggml_id;       // GGUF tensor type id
  bool quantized;
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}

// Bytes taken by `n` consecutive elements; `n` must be a multiple of the block size.
std::optional<size_t> dtype_bytes(DType t, int64_t n);

// GGUF type id <-> DType; nullopt for ids smoe does not know.
std::optional<DType> dtype_from_ggml(uint32_t ggml_id);
// Case-insensitive: "q4_k", "F16", "bf16", ...
std::optional<DType> dtype_from_name(std::string_view name);
// A GGUF type id's name even when smoe cannot compute with it (for error messages).
std::string_view ggml_type_name(uint32_t ggml_id);

}  // namespace smoe
