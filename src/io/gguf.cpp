#include "io/gguf.h"

#include <unordered_set>

#include "core/error.h"
#include "io/byte_reader.h"

namespace smoe {
namespace {

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;

// Smallest encoded size of one value of type t (for sanity-checking array counts).
size_t min_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::STRING:
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    case GgufType::ARRAY:
      return 12;
  }
  return 1;
}

GgufType read_type(ByteReader& r, const std::string& key) {
  const uint32_t t = r.read<uint32_t>("value type");
  if (t > static_cast<uint32_t>(GgufType::FLOAT64))
    fail("{}: metadata key '{}' has unknown value type {}", r.file(), key, t);
  return static_cast<GgufType>(t);
}

// Reads one scalar of type t as (signed/unsigned/float/bool/string) into v.scalar.
void read_scalar(ByteReader& r, GgufType t, GgufValue& v) {
  switch (t) {
    case GgufType::UINT8:
      v.scalar = uint64_t{r.read<uint8_t>("u8")};
      break;
    case GgufType::INT8:
      v.scalar = int64_t{r.read<int8_t>("i8")};
      break;
    case GgufType::UINT16:
      v.scalar = uint64_t{r.read<uint16_t>("u16")};
      break;
    case GgufType::INT16:
      v.scalar = int64_t{r.read<int16_t>("i16")};
      break;
    case GgufType::UINT32:
      v.scalar = uint64_t{r.read<uint32_t>("u32")};
      break;
    case GgufType::INT32:
      v.scalar = int64_t{r.read<int32_t>("i32")};
      break;
    case GgufType::UINT64:
      v.scalar = r.read<uint64_t>("u64");
      break;
    case GgufType::INT64:
      v.scalar = r.read<int64_t>("i64");
      break;
    case GgufType::FLOAT32:
      v.scalar = double{r.read<float>("f32")};
      break;
    case GgufType::FLOAT64:
      v.scalar = r.read<double>("f64");
      break;
    case GgufType::BOOL: {
      const uint8_t b = r.read<uint8_t>("bool");
      if (b > 1) fail("{}: invalid bool value {} at byte {}", r.file(), b, r.pos() - 1);
      v.scalar = b == 1;
      break;
    }
    case GgufType::STRING:
      v.scalar = r.read_string("string value");
      break;
    case GgufType::ARRAY:
      break;
  }
}

GgufValue read_value(ByteReader& r, GgufType t, const std::string& key, int depth);

void read_array(ByteReader& r, GgufValue& v, const std::string& key, int depth) {
  if (depth >= kMaxArrayDepth) fail("{}: metadata key '{}' nests arrays too deeply", r.file(), key);
  v.elem_type = read_type(r, key);
  const uint64_t n = r.read<uint64_t>("array length");
  if (n > r.remaining() / min_size(v.elem_type))
    fail("{}: metadata key '{}' claims an array of {} elements, more than the file holds", r.file(),
         key, n);
  const GgufType et = v.elem_type;
  for (uint64_t i = 0; i < n; ++i) {
    if (et == GgufType::ARRAY) {
      v.arrays.push_back(read_value(r, et, key, depth + 1));
      continue;
    }
    GgufValue e;
    read_scalar(r, et, e);
    if (gguf_is_int_type(et)) {
      v.ints.push_back(std::holds_alternative<uint64_t>(e.scalar)
                           ? static_cast<int64_t>(std::get<uint64_t>(e.scalar))
                           : std::get<int64_t>(e.scalar));
    } else if (et == GgufType::FLOAT32 || et == GgufType::FLOAT64) {
      v.floats.push_back(std::get<double>(e.scalar));
    } else if (et == GgufType::BOOL) {
      v.bools.push_back(std::get<bool>(e.scalar) ? 1 : 0);
    } else {
      v.strings.push_back(std::move(std::get<std::string>(e.scalar)));
    }
  }
}

GgufValue read_value(ByteReader& r, GgufType t, const std::string& key, int depth) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::ARRAY)
    read_array(r, v, key, depth);
  else
    read_scalar(r, t, v);
  return v;
}

}  // namespace

bool gguf_is_int_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                               "int32",  "float32", "bool",   "string", "array",
                                               "uint64", "int64",   "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

size_t GgufValue::array_size() const {
  return ints.size() + floats.size() + strings.size() + bools.size() + arrays.size();
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path, const LoadOptions& opts) {
  return parse(MappedFile::open(path, opts));
}

std::unique_ptr<GgufFile> GgufFile::parse(std::shared_ptr<MappedFile> file) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->file_ = std::move(file);
  g->add_mapped_file(g->file_.get());
  const std::string& path = g->file_->path();
  ByteReader r(g->file_->data(), g->file_->size(), path);
  if (g->file_->size() < 4 || std::memcmp(g->file_->data(), "GGUF", 4) != 0)
    fail("{}: not a GGUF file (bad magic)", path);
  r.read<uint32_t>("magic");
  g->version_ = r.read<uint32_t>("version");
  if (g->version_ == 1) fail("{}: unsupported GGUF version 1 (convert it to version 3)", path);
  if (g->version_ != 2 && g->version_ != 3) {
    const bool swapped = g->version_ == 0x02000000u || g->version_ == 0x03000000u;
    fail("{}: unknown GGUF version {} (smoe reads versions 2 and 3){}", path, g->version_,
         swapped ? "; this looks like a big-endian GGUF file, which smoe does not read" : "");
  }
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  if (n_kv > r.remaining() / 12)
    fail("{}: metadata count {} exceeds what the file holds", path, n_kv);
  if (n_tensors > r.remaining() / 24)
    fail("{}: tensor count {} exceeds what the file holds", path, n_tensors);

  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKV kv;
    kv.key = r.read_string("metadata key");
    if (!keys.insert(kv.key).second) fail("{}: metadata key '{}' appears twice", path, kv.key);
    const GgufType t = read_type(r, kv.key);
    kv.value = read_value(r, t, kv.key, 0);
    g->kv_.push_back(std::move(kv));
  }
  if (auto a = g->get_int("general.alignment")) {
    if (*a <= 0 || (*a & (*a - 1)) != 0)
      fail("{}: general.alignment {} is not a power of two", path, *a);
    if (*a > (1 << 20)) fail("{}: general.alignment {} is too large (at most 2^20)", path, *a);
    g->alignment_ = static_cast<uint64_t>(*a);
  }
  g->read_tensor_infos(r, n_tensors);
  return g;
}

void GgufFile::read_tensor_infos(ByteReader& r, uint64_t n_tensors) {
  const std::string& path = file_->path();
  struct Info {
    TensorView view;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info in;
    in.view.name = r.read_string("tensor name");
    in.view.file = path;
    const uint32_t nd = r.read<uint32_t>("tensor dimension count");
    if (nd == 0 || nd > kMaxDims)
      fail("{}: tensor '{}' has {} dimensions (1..{} allowed)", path, in.view.name, nd, kMaxDims);
    std::vector<int64_t> ne(nd);
    int64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t v = r.read<uint64_t>("tensor dimension");
      if (v == 0 || v > (uint64_t{1} << 40) || numel > (int64_t{1} << 50) / static_cast<int64_t>(v))
        fail("{}: tensor '{}' has an invalid dimension {}", path, in.view.name, v);
      ne[d] = static_cast<int64_t>(v);
      numel *= ne[d];
    }
    in.view.shape.assign(ne.rbegin(), ne.rend());  // outermost first
    const uint32_t type = r.read<uint32_t>("tensor type");
    const auto dt = dtype_from_ggml(type);
    if (!dt)
      fail("{}: tensor '{}' has type {} ({}), which smoe does not support", path, in.view.name,
           type, ggml_type_name(type));
    in.view.dtype = *dt;
    const auto nbytes = dtype_bytes(*dt, ne[0]);
    if (!nbytes)
      fail("{}: tensor '{}' rows of {} elements are not whole {} blocks of {}", path, in.view.name,
           ne[0], dtype_name(*dt), dtype_info(*dt).block_size);
    in.view.nbytes = *nbytes * static_cast<size_t>(numel / ne[0]);
    in.offset = r.read<uint64_t>("tensor offset");
    if (in.offset % alignment_ != 0)
      fail("{}: tensor '{}' offset {} is not a multiple of the alignment {}", path, in.view.name,
           in.offset, alignment_);
    infos.push_back(std::move(in));
  }
  const uint64_t data_start = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t size = file_->size();
  for (Info& in : infos) {
    if (data_start > size || in.offset > size - data_start ||
        in.view.nbytes > size - data_start - in.offset)
      fail(
          "{}: tensor '{}' data ({} bytes at offset {}) lies beyond the end of the file ({} "
          "bytes; truncated?)",
          path, in.view.name, in.view.nbytes, data_start + in.offset, size);
    in.view.data = file_->data() + data_start + in.offset;
    in.view.file_offset = data_start + in.offset;
    add_tensor(std::move(in.view));
  }
}

std::string GgufFile::description() const {
  return fmt::format("GGUF v{} file {} ({} tensors, {} metadata keys)", version_, file_->path(),
                     tensors_.size(), kv_.size());
}

const GgufValue* GgufFile::find_kv(std::string_view key) const {
  for (const GgufKV& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const char* want,
                             const GgufValue& v) {
  fail("{}: metadata key '{}' should be {}, but is {}", path, key, want, gguf_type_name(v.type));
}
}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return std::nullopt;
  if (auto* u = std::get_if<uint64_t>(&v->scalar); u && gguf_is_int_type(v->type)) {
    if (*u > static_cast<uint64_t>(INT64_MAX))
      fail("{}: metadata key '{}' holds {}, too large for a signed 64-bit integer", path(), key,
           *u);
    return static_cast<int64_t>(*u);
  }
  if (auto* i = std::get_if<int64_t>(&v->scalar); i && gguf_is_int_type(v->type)) return *i;
  if (v->type == GgufType::BOOL) return std::get<bool>(v->scalar) ? 1 : 0;
  wrong_type(path(), key, "an integer", *v);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::FLOAT32 || v->type == GgufType::FLOAT64)
    return std::get<double>(v->scalar);
  if (auto* u = std::get_if<uint64_t>(&v->scalar); u && gguf_is_int_type(v->type))
    return static_cast<double>(*u);
  if (auto* i = std::get_if<int64_t>(&v->scalar); i && gguf_is_int_type(v->type))
    return static_cast<double>(*i);
  wrong_type(path(), key, "a number", *v);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) wrong_type(path(), key, "a bool", *v);
  return std::get<bool>(v->scalar);
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) wrong_type(path(), key, "a string", *v);
  return std::get<std::string>(v->scalar);
}

const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    wrong_type(path(), key, "an array of strings", *v);
  return &v->strings;
}

const std::vector<double>* GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY ||
      (v->elem_type != GgufType::FLOAT32 && v->elem_type != GgufType::FLOAT64))
    wrong_type(path(), key, "an array of floats", *v);
  return &v->floats;
}

const std::vector<int64_t>* GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find_kv(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || !gguf_is_int_type(v->elem_type))
    wrong_type(path(), key, "an array of integers", *v);
  return &v->ints;
}

}  // namespace smoe
