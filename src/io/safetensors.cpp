#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace smoe {
namespace fs = std::filesystem;
namespace {

using nlohmann::json;

struct StDType {
  const char* name;
  DType dtype;
};
constexpr StDType kDTypes[] = {{"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
                               {"F64", DType::F64}, {"I8", DType::I8},   {"I16", DType::I16},
                               {"I32", DType::I32}, {"I64", DType::I64}};

std::optional<DType> st_dtype(const std::string& s) {
  for (const StDType& d : kDTypes)
    if (s == d.name) return d.dtype;
  return std::nullopt;
}

const char* st_name(DType t, const std::string& tensor) {
  for (const StDType& d : kDTypes)
    if (t == d.dtype) return d.name;
  fail("safetensors cannot store tensor '{}' of type {}", tensor, dtype_name(t));
}

// A JSON value for an error message: scalars and flat arrays in full (cut at 80 characters),
// anything nested only by its kind (dumping is recursive, and a hostile header may nest deeply).
std::string short_dump(const json& j) {
  bool flat = j.is_primitive();
  if (j.is_array()) {
    flat = j.size() <= 16;
    for (const json& e : j) flat = flat && e.is_primitive();
  }
  if (!flat) return fmt::format("<{} of {} entries>", j.type_name(), j.size());
  std::string s = j.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

json parse_header(const MappedFile& f, uint64_t& data_start) {
  if (f.size() < 8) fail("{}: not a safetensors file (only {} bytes)", f.path(), f.size());
  uint64_t n;
  std::memcpy(&n, f.data(), 8);
  if (n < 2 || n > f.size() - 8)
    fail("{}: safetensors header length {} does not fit the file of {} bytes", f.path(), n,
         f.size());
  data_start = 8 + n;
  const char* p = reinterpret_cast<const char*>(f.data()) + 8;
  try {
    return json::parse(p, p + n);
  } catch (const json::exception& e) {
    fail("{}: invalid safetensors header JSON: {}", f.path(), e.what());
  }
}

std::vector<int64_t> parse_shape(const std::string& path, const std::string& name, const json& js,
                                 int64_t& numel) {
  if (!js.is_array() || js.size() > 8)
    fail("{}: tensor '{}' has an invalid shape {} (want up to 8 sizes)", path, name,
         short_dump(js));
  std::vector<int64_t> shape;
  numel = 1;
  for (const json& d : js) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40))
      fail("{}: tensor '{}' has an invalid shape {}", path, name, short_dump(js));
    const int64_t v = d.get<int64_t>();
    if (v > 0 && numel > (int64_t{1} << 50) / v)
      fail("{}: tensor '{}' shape {} is too large", path, name, short_dump(js));
    numel *= v;
    shape.push_back(v);
  }
  return shape;
}

TensorView parse_entry(const MappedFile& f, const std::string& name, const json& e,
                       uint64_t data_start) {
  const std::string& path = f.path();
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
    fail("{}: tensor '{}' needs dtype, shape and data_offsets", path, name);
  const json& jd = e["dtype"];
  const auto dt = jd.is_string() ? st_dtype(jd.get<std::string>()) : std::nullopt;
  if (!dt)
    fail(
        "{}: tensor '{}' has unsupported dtype {} (smoe reads F32, F16, BF16, F64, I8, I16, I32, "
        "I64)",
        path, name, short_dump(jd));
  TensorView t;
  t.name = name;
  t.file = path;
  t.dtype = *dt;
  int64_t numel = 0;
  t.shape = parse_shape(path, name, e["shape"], numel);
  const json& jo = e["data_offsets"];
  if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
      !jo[1].is_number_unsigned())
    fail("{}: tensor '{}' has invalid data_offsets {} (want [begin, end])", path, name,
         short_dump(jo));
  const uint64_t b = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
  const uint64_t data_size = f.size() - data_start;
  if (b > end || end > data_size)
    fail("{}: tensor '{}' data_offsets [{}, {}] lie outside the {} data bytes (truncated?)", path,
         name, b, end, data_size);
  const size_t want = *dtype_bytes(t.dtype, numel);
  if (end - b != want)
    fail("{}: tensor '{}' of shape {} and dtype {} needs {} bytes, data_offsets give {}", path,
         name, shape_string(t.shape), dtype_name(t.dtype), want, end - b);
  t.data = f.data() + data_start + b;
  t.file_offset = data_start + b;
  t.nbytes = want;
  return t;
}

json read_json_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail("cannot read '{}': {}", p.string(), std::strerror(errno));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", p.string(), e.what());
  }
}

// model.safetensors.index.json: {"weight_map": {tensor: shard file}}. Every shard is opened once
// and every tensor listed must be in the shard the index names.
std::unique_ptr<SafetensorsSource> open_index(const fs::path& dir, const fs::path& index,
                                              const LoadOptions& opts) {
  const json j = read_json_file(index);
  const std::string ip = index.string();
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail("{}: no \"weight_map\" object", ip);
  const json& map = j["weight_map"];
  if (map.empty()) fail("{}: \"weight_map\" lists no tensors", ip);
  std::vector<std::string> shards;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it.value().is_string())
      fail("{}: weight_map['{}'] is {}, not a file name", ip, it.key(), short_dump(it.value()));
    const std::string file = it.value().get<std::string>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos)
      fail("{}: shard name '{}' of tensor '{}' must be a plain file name", ip, file, it.key());
    if (seen.insert(file).second) shards.push_back((dir / file).string());
  }
  auto s = SafetensorsSource::open_files(shards, opts);
  for (auto it = map.begin(); it != map.end(); ++it) {
    const TensorView* t = s->find(it.key());
    const std::string want = (dir / it.value().get<std::string>()).string();
    if (!t || t->file != want)
      fail("{}: tensor '{}' is listed in {} but not found there", ip, it.key(), want);
  }
  return s;
}

}  // namespace

void SafetensorsSource::add_file(std::shared_ptr<MappedFile> f) {
  uint64_t data_start = 0;
  const json h = parse_header(*f, data_start);
  if (!h.is_object())
    fail("{}: safetensors header is a JSON {}, not an object", f->path(), h.type_name());
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    add_tensor(parse_entry(*f, it.key(), it.value(), data_start));
  }
  add_mapped_file(f.get());
  files_.push_back(std::move(f));
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::parse(std::shared_ptr<MappedFile> file) {
  std::unique_ptr<SafetensorsSource> s(new SafetensorsSource());
  s->desc_ = fmt::format("safetensors file {}", file->path());
  s->add_file(std::move(file));
  return s;
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open_file(const std::string& path,
                                                                const LoadOptions& opts) {
  return open_files({path}, opts);
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open_files(
    const std::vector<std::string>& paths, const LoadOptions& opts) {
  if (paths.empty()) fail("no safetensors files given");
  std::unique_ptr<SafetensorsSource> s(new SafetensorsSource());
  for (const std::string& p : paths) s->add_file(MappedFile::open(p, opts));
  s->desc_ = paths.size() == 1
                 ? fmt::format("safetensors file {}", paths[0])
                 : fmt::format("safetensors set of {} files ({}, ...)", paths.size(), paths[0]);
  return s;
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open_dir(const std::string& dir,
                                                               const LoadOptions& opts) {
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) fail("'{}' is not a folder", dir);
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    auto s = open_index(d, index, opts);
    s->desc_ = fmt::format("safetensors folder {} ({} shards)", dir, s->files_.size());
    return s;
  }
  for (const char* name : {"model.safetensors", "consolidated.safetensors"})
    if (fs::exists(d / name, ec)) return open_file((d / name).string(), opts);
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(d, ec))
    if (e.path().extension() == ".safetensors" && !e.is_directory())
      all.push_back(e.path().string());
  if (ec) fail("cannot list '{}': {}", dir, ec.message());
  if (all.empty()) fail("'{}' holds no .safetensors files", dir);
  std::sort(all.begin(), all.end());
  auto s = open_files(all, opts);
  s->desc_ = fmt::format("safetensors folder {} ({} files)", dir, all.size());
  return s;
}

std::string SafetensorsSource::description() const {
  return desc_;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  uint64_t off = 0;
  for (const SafetensorsEntry& t : tensors) {
    const char* dt = st_name(t.dtype, t.name);
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        fail("{}: tensor '{}' has a negative size in {}", path, t.name, shape_string(t.shape));
      numel *= d;
    }
    const auto want = dtype_bytes(t.dtype, numel);
    if (!want || *want != t.bytes.size())
      fail("{}: tensor '{}' of shape {} and dtype {} needs {} bytes, got {}", path, t.name,
           shape_string(t.shape), dt, want.value_or(0), t.bytes.size());
    if (t.name == "__metadata__" || h.contains(t.name))
      fail("{}: tensor name '{}' is reserved or repeated", path, t.name);
    h[t.name] = {{"dtype", dt}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("cannot write '{}': {}", path, std::strerror(errno));
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  for (const SafetensorsEntry& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
  out.close();
  if (!out) fail("failed writing '{}' (disk full?)", path);
}

}  // namespace smoe
