// GGUF (v2, v3) reader over a MappedFile: every metadata value type, general.alignment, tensor
// infos and offsets, all bounds-checked. Tensor views point into the file (no copy).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/mapped_file.h"
#include "io/weight_source.h"

namespace smoe {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_type_name(GgufType t);
// Any of the eight integer types.
bool gguf_is_int_type(GgufType t);

// One metadata value. Scalars keep their exact type; arrays are homogeneous (elem_type) and are
// stored in the vector matching their element kind.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // for ARRAY
  std::variant<uint64_t, int64_t, double, bool, std::string>
      scalar;                  // by kind: unsigned, signed, float, bool, string
  std::vector<int64_t> ints;   // ARRAY of any integer type (UINT64 values above INT64_MAX wrap)
  std::vector<double> floats;  // ARRAY of FLOAT32 / FLOAT64
  std::vector<std::string> strings;  // ARRAY of STRING
  std::vector<uint8_t> bools;        // ARRAY of BOOL
  std::vector<GgufValue> arrays;     // ARRAY of ARRAY (nested)

  bool is_array() const { return type == GgufType::ARRAY; }
  size_t array_size() const;
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

class ByteReader;

class GgufFile : public WeightSource {
 public:
  // Throws smoe::Error naming the file and what is wrong: bad magic, unknown version, truncated,
  // tensor data out of bounds, unknown tensor type (named), overflowing counts, ...
  static std::unique_ptr<GgufFile> open(const std::string& path, const LoadOptions& opts = {});
  // Parse from bytes already in memory (the file object keeps them alive). `name` is for errors.
  static std::unique_ptr<GgufFile> parse(std::shared_ptr<MappedFile> file);

  std::string description() const override;
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return file_->path(); }
  const std::vector<GgufKV>& metadata() const { return kv_; }

  const GgufValue* find_kv(std::string_view key) const;
  // Typed getters: nullopt when the key is absent; smoe::Error when present with an incompatible
  // type.
  std::optional<int64_t> get_int(std::string_view key) const;   // any integer type (and BOOL)
  std::optional<double> get_float(std::string_view key) const;  // FLOAT32/64 or any integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const std::vector<std::string>* get_string_array(std::string_view key) const;
  const std::vector<double>* get_float_array(std::string_view key) const;
  const std::vector<int64_t>* get_int_array(std::string_view key) const;

 private:
  GgufFile() = default;
  void read_tensor_infos(ByteReader& r, uint64_t n_tensors);
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<GgufKV> kv_;
};

}  // namespace smoe
