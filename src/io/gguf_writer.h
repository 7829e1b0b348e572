// Writes GGUF v3 files: metadata of every type, then tensors aligned to general.alignment (32).
// Used by `smoe convert`, `smoe quantize` and the tests. A tensor's bytes are either copied when
// it is added or streamed: declared by name, type and shape, then produced piece by piece when
// write() reaches it, so that a file far larger than memory can be written.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"

namespace smoe {

// Where a streamed tensor's producer writes its bytes, in order, in pieces of any size.
class GgufTensorSink {
 public:
  // Throws smoe::Error if the bytes would go past the tensor's declared size.
  void write(const void* data, size_t nbytes);
  uint64_t written() const { return written_; }

 private:
  friend class GgufWriter;
  GgufTensorSink(std::ostream& out, const std::string& name, uint64_t expected)
      : out_(out), name_(name), expected_(expected) {}
  std::ostream& out_;
  const std::string& name_;
  uint64_t expected_;
  uint64_t written_ = 0;
};

// Writes one tensor's bytes, all of them, to the sink. Called once by each write().
using GgufTensorProducer = std::function<void(GgufTensorSink&)>;

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
  // A tensor whose bytes `produce` writes when write() reaches it (its offset is known from the
  // declared shape before any tensor is written). It must write exactly dtype_bytes(dtype,
  // numel) bytes; write() fails with smoe::Error naming the tensor otherwise. The producer runs
  // while write() runs: what it reads must live until then.
  void add_streamed_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                           GgufTensorProducer produce);

  // Throws smoe::Error on I/O failure and rethrows what a producer throws; either way no file is
  // left behind. Writes to path + ".tmp" and renames. Memory: the copied tensors, and whatever
  // the running producer holds.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
    std::vector<uint8_t> bytes;  // a copied tensor's bytes
    GgufTensorProducer produce;  // a streamed tensor's producer (bytes empty)
  };
  // Checks the shape and the name; returns the tensor's size in bytes.
  uint64_t check_new_tensor(const std::string& name, DType dtype,
                            const std::vector<int64_t>& shape) const;
  void write_header(std::ostream& f) const;
  void write_tensor_data(std::ostream& f, const Tensor& t, const std::string& path) const;
  std::vector<GgufKV> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace smoe
