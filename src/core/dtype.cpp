#include "core/dtype.h"

#include <array>
#include <cctype>

namespace smoe {
namespace {

// Block geometry as GGUF defines it: QK = 32 for the legacy formats, 256 for the k-quants.
constexpr std::array<DTypeInfo, 20> kInfo = {{
    {"F32", 1, 4, 0, false},      {"F16", 1, 2, 1, false},      {"BF16", 1, 2, 30, false},
    {"Q4_0", 32, 18, 2, true},    {"Q4_1", 32, 20, 3, true},    {"Q5_0", 32, 22, 6, true},
    {"Q5_1", 32, 24, 7, true},    {"Q8_0", 32, 34, 8, true},    {"Q8_1", 32, 36, 9, true},
    {"Q2_K", 256, 84, 10, true},  {"Q3_K", 256, 110, 11, true}, {"Q4_K", 256, 144, 12, true},
    {"Q5_K", 256, 176, 13, true}, {"Q6_K", 256, 210, 14, true}, {"Q8_K", 256, 292, 15, true},
    {"I8", 1, 1, 24, false},      {"I16", 1, 2, 25, false},     {"I32", 1, 4, 26, false},
    {"I64", 1, 8, 27, false},     {"F64", 1, 8, 28, false},
}};

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  return kInfo[static_cast<size_t>(t)];
}

std::optional<size_t> dtype_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  if (n < 0 || n % i.block_size != 0) return std::nullopt;
  return static_cast<size_t>(n / i.block_size * i.block_bytes);
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  for (size_t k = 0; k < kInfo.size(); ++k)
    if (kInfo[k].ggml_id == id) return static_cast<DType>(k);
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (size_t k = 0; k < kInfo.size(); ++k) {
    std::string_view n = kInfo[k].name;
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t c = 0; c < n.size(); ++c)
      eq = eq && std::toupper(static_cast<unsigned char>(name[c])) == n[c];
    if (eq) return static_cast<DType>(k);
  }
  return std::nullopt;
}

std::string_view ggml_type_name(uint32_t id) {
  if (auto t = dtype_from_ggml(id)) return dtype_name(*t);
  switch (id) {
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 29:
      return "IQ1_M";
    default:
      return "unknown";
  }
}

}  // namespace smoe
