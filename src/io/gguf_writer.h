// Writes GGUF v3 files: metadata of every type, then tensors aligned to general.alignment (32).
// Used by `smoe convert`, `smoe quantize` and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"

namespace smoe {

class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void set_value(const std::string& key, const GgufValue& v);  // any value, e.g. copied from a file

  // `shape` outermost first (smoe convention); bytes must be exactly dtype_bytes(dtype, numel).
  // The bytes are copied.
  void add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                  const void* data, size_t nbytes);

  // Throws smoe::Error on I/O failure. Writes to path + ".tmp" and renames.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<GgufKV> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace smoe
