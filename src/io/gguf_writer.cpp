#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace smoe {
namespace {

constexpr uint64_t kAlignment = 32;

class Out {
 public:
  explicit Out(std::ostream& f) : f_(f) {}
  template <typename T>
  void put(T v) {
    f_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    f_.write(s.data(), static_cast<std::streamsize>(s.size()));
    pos_ += s.size();
  }
  void put_bytes(const void* p, size_t n) {
    f_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    pos_ += n;
  }
  void pad() {
    while (pos_ % kAlignment) put<uint8_t>(0);
  }
  uint64_t pos() const { return pos_; }

 private:
  std::ostream& f_;
  uint64_t pos_ = 0;
};

void put_scalar(Out& o, GgufType t, const GgufValue& v) {
  auto u = [&] {
    return std::holds_alternative<uint64_t>(v.scalar)
               ? std::get<uint64_t>(v.scalar)
               : static_cast<uint64_t>(std::get<int64_t>(v.scalar));
  };
  switch (t) {
    case GgufType::UINT8:
      o.put<uint8_t>(static_cast<uint8_t>(u()));
      break;
    case GgufType::INT8:
      o.put<int8_t>(static_cast<int8_t>(u()));
      break;
    case GgufType::UINT16:
      o.put<uint16_t>(static_cast<uint16_t>(u()));
      break;
    case GgufType::INT16:
      o.put<int16_t>(static_cast<int16_t>(u()));
      break;
    case GgufType::UINT32:
      o.put<uint32_t>(static_cast<uint32_t>(u()));
      break;
    case GgufType::INT32:
      o.put<int32_t>(static_cast<int32_t>(u()));
      break;
    case GgufType::UINT64:
      o.put<uint64_t>(u());
      break;
    case GgufType::INT64:
      o.put<int64_t>(static_cast<int64_t>(u()));
      break;
    case GgufType::FLOAT32:
      o.put<float>(static_cast<float>(std::get<double>(v.scalar)));
      break;
    case GgufType::FLOAT64:
      o.put<double>(std::get<double>(v.scalar));
      break;
    case GgufType::BOOL:
      o.put<uint8_t>(std::get<bool>(v.scalar) ? 1 : 0);
      break;
    case GgufType::STRING:
      o.put_string(std::get<std::string>(v.scalar));
      break;
    case GgufType::ARRAY:
      break;
  }
}

void put_value(Out& o, const GgufValue& v) {
  if (v.type != GgufType::ARRAY) {
    put_scalar(o, v.type, v);
    return;
  }
  o.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
  o.put<uint64_t>(v.array_size());
  GgufValue e;
  for (int64_t x : v.ints) {
    e.scalar = x;
    put_scalar(o, v.elem_type, e);
  }
  for (double x : v.floats) {
    e.scalar = x;
    put_scalar(o, v.elem_type, e);
  }
  for (uint8_t b : v.bools) o.put<uint8_t>(b ? 1 : 0);
  for (const std::string& s : v.strings) o.put_string(s);
  for (const GgufValue& a : v.arrays) put_value(o, a);  // nested: elem type, count, elements
}

GgufValue scalar(GgufType t, std::variant<uint64_t, int64_t, double, bool, std::string> s) {
  GgufValue v;
  v.type = t;
  v.scalar = std::move(s);
  return v;
}

// A value the writer can encode: its type is known, a scalar holds the alternative of its kind and
// an array keeps all its elements in the one vector matching elem_type.
void check_value(const std::string& key, const GgufValue& v, int depth) {
  const auto bad = [&](const char* why) {
    fail("GGUF writer: metadata key '{}' ({}): {}", key, gguf_type_name(v.type), why);
  };
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::FLOAT64))
    bad("unknown value type");
  if (v.type != GgufType::ARRAY) {
    const auto& s = v.scalar;
    const bool ok = gguf_is_int_type(v.type)
                        ? std::holds_alternative<uint64_t>(s) || std::holds_alternative<int64_t>(s)
                    : v.type == GgufType::FLOAT32 || v.type == GgufType::FLOAT64
                        ? std::holds_alternative<double>(s)
                    : v.type == GgufType::BOOL ? std::holds_alternative<bool>(s)
                                               : std::holds_alternative<std::string>(s);
    if (!ok) bad("the scalar does not hold a value of this type");
    return;
  }
  if (depth >= 8) bad("arrays nest too deeply");
  const GgufType e = v.elem_type;
  if (static_cast<uint32_t>(e) > static_cast<uint32_t>(GgufType::FLOAT64))
    bad("unknown array element type");
  const size_t in_kind = gguf_is_int_type(e)                                ? v.ints.size()
                         : e == GgufType::FLOAT32 || e == GgufType::FLOAT64 ? v.floats.size()
                         : e == GgufType::BOOL                              ? v.bools.size()
                         : e == GgufType::STRING                            ? v.strings.size()
                                                                            : v.arrays.size();
  if (in_kind != v.array_size()) bad("array elements are stored in the wrong vector");
  for (const GgufValue& a : v.arrays) {
    if (a.type != GgufType::ARRAY) bad("a nested element is not an array");
    check_value(key, a, depth + 1);
  }
}

}  // namespace

void GgufWriter::set_value(const std::string& key, const GgufValue& v) {
  check_value(key, v, 0);
  for (GgufKV& kv : kv_)
    if (kv.key == key) {
      kv.value = v;
      return;
    }
  kv_.push_back({key, v});
}

void GgufWriter::set_u32(const std::string& k, uint32_t v) {
  set_value(k, scalar(GgufType::UINT32, uint64_t{v}));
}
void GgufWriter::set_i32(const std::string& k, int32_t v) {
  set_value(k, scalar(GgufType::INT32, int64_t{v}));
}
void GgufWriter::set_u64(const std::string& k, uint64_t v) {
  set_value(k, scalar(GgufType::UINT64, v));
}
void GgufWriter::set_f32(const std::string& k, float v) {
  set_value(k, scalar(GgufType::FLOAT32, double{v}));
}
void GgufWriter::set_bool(const std::string& k, bool v) {
  set_value(k, scalar(GgufType::BOOL, v));
}
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  set_value(k, scalar(GgufType::STRING, v));
}

void GgufWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem_type = GgufType::STRING;
  a.strings = v;
  set_value(k, a);
}

void GgufWriter::set_f32_array(const std::string& k, const std::vector<float>& v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem_type = GgufType::FLOAT32;
  a.floats.assign(v.begin(), v.end());
  set_value(k, a);
}

void GgufWriter::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  GgufValue a;
  a.type = GgufType::ARRAY;
  a.elem_type = GgufType::INT32;
  a.ints.assign(v.begin(), v.end());
  set_value(k, a);
}

uint64_t GgufWriter::check_new_tensor(const std::string& name, DType dtype,
                                      const std::vector<int64_t>& shape) const {
  if (shape.empty() || shape.size() > 4)
    fail("GGUF writer: tensor '{}' needs 1..4 dimensions, has shape {}", name, shape_string(shape));
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d <= 0 || d > (int64_t{1} << 40) || numel > (int64_t{1} << 50) / d)
      fail("GGUF writer: tensor '{}' has an invalid shape {}", name, shape_string(shape));
    numel *= d;
  }
  const auto bytes = dtype_bytes(dtype, numel);
  if (!bytes || !dtype_bytes(dtype, shape.back()))
    fail("GGUF writer: tensor '{}' of shape {} cannot be of type {} (rows of whole blocks)", name,
         shape_string(shape), dtype_name(dtype));
  for (const Tensor& t : tensors_)
    if (t.name == name) fail("GGUF writer: tensor '{}' added twice", name);
  return *bytes;
}

void GgufWriter::add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                            const void* data, size_t nbytes) {
  const uint64_t want = check_new_tensor(name, dtype, shape);
  if (want != nbytes)
    fail("GGUF writer: tensor '{}' of shape {} and type {} cannot hold {} bytes", name,
         shape_string(shape), dtype_name(dtype), nbytes);
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, dtype, shape, want, std::vector<uint8_t>(p, p + nbytes), {}});
}

void GgufWriter::add_streamed_tensor(const std::string& name, DType dtype,
                                     const std::vector<int64_t>& shape,
                                     GgufTensorProducer produce) {
  if (!produce) fail("GGUF writer: tensor '{}' has no producer", name);
  const uint64_t bytes = check_new_tensor(name, dtype, shape);
  tensors_.push_back({name, dtype, shape, bytes, {}, std::move(produce)});
}

void GgufTensorSink::write(const void* data, size_t nbytes) {
  if (nbytes > expected_ - written_)
    fail("GGUF writer: the producer of tensor '{}' wrote {} bytes, more than its {} bytes", name_,
         written_ + nbytes, expected_);
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  written_ += nbytes;
}

// The tensor's bytes, then zeros up to the next multiple of the alignment.
void GgufWriter::write_tensor_data(std::ostream& f, const Tensor& t,
                                   const std::string& path) const {
  if (t.produce) {
    GgufTensorSink sink(f, t.name, t.nbytes);
    t.produce(sink);
    if (sink.written() != t.nbytes)
      fail("GGUF writer: the producer of tensor '{}' ({} {}) wrote {} bytes, expected {}", t.name,
           dtype_name(t.dtype), shape_string(t.shape), sink.written(), t.nbytes);
  } else {
    f.write(reinterpret_cast<const char*>(t.bytes.data()),
            static_cast<std::streamsize>(t.bytes.size()));
  }
  static constexpr char kZeros[kAlignment] = {};
  f.write(kZeros, static_cast<std::streamsize>((kAlignment - t.nbytes % kAlignment) % kAlignment));
  if (!f) fail("failed writing '{}' at tensor '{}' (disk full?)", path, t.name);
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  const auto remove_tmp = [&] {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  };
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot write '{}': {}", tmp, std::strerror(errno));
    try {
      write_header(f);
      for (const Tensor& t : tensors_) write_tensor_data(f, t, tmp);
      f.flush();
      f.close();
      if (!f) fail("failed writing '{}' (disk full?)", tmp);
    } catch (...) {
      f.close();
      remove_tmp();
      throw;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    remove_tmp();
    fail("cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  }
}

// Everything before the tensors' bytes: magic, counts, metadata, tensor infos (offsets from the
// declared sizes), padding to the alignment.
void GgufWriter::write_header(std::ostream& f) const {
  Out o(f);
  o.put_bytes("GGUF", 4);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  // The writer's own alignment always wins over a copied general.alignment.
  const auto n_align = std::count_if(
      kv_.begin(), kv_.end(), [](const GgufKV& kv) { return kv.key == "general.alignment"; });
  o.put<uint64_t>(kv_.size() - static_cast<size_t>(n_align) + 1);
  o.put_string("general.alignment");
  o.put<uint32_t>(static_cast<uint32_t>(GgufType::UINT32));
  o.put<uint32_t>(static_cast<uint32_t>(kAlignment));
  for (const GgufKV& kv : kv_) {
    if (kv.key == "general.alignment") continue;
    o.put_string(kv.key);
    o.put<uint32_t>(static_cast<uint32_t>(kv.value.type));
    put_value(o, kv.value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    o.put_string(t.name);
    o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      o.put<uint64_t>(static_cast<uint64_t>(*it));
    o.put<uint32_t>(dtype_info(t.dtype).ggml_id);
    o.put<uint64_t>(offset);
    offset += (t.nbytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  o.pad();
}

}  // namespace smoe
