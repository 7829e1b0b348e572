#include "io/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace smoe {
namespace fs = std::filesystem;
namespace {

std::optional<DType> st_dtype(const std::string& s) {
  static const std::map<std::string, DType> m = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I8", DType::I8},
      {"I16", DType::I16}, {"I32", DType::I32}, {"I64", DType::I64},   {"F64", DType::F64}};
  auto it = m.find(s);
  return it == m.end() ? std::nullopt : std::optional<DType>(it->second);
}

const char* st_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I8:
      return "I8";
    case DType::I16:
      return "I16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::F64:
      return "F64";
    default:
      fail("safetensors cannot store {} tensors", dtype_name(t));
  }
}

nlohmann::json parse_header(const MappedFile& f, uint64_t& data_start) {
  if (f.size() < 8) fail("{}: not a safetensors file (only {} bytes)", f.path(), f.size());
  uint64_t n;
  std::memcpy(&n, f.data(), 8);
  if (n < 2 || n > f.size() - 8)
    fail("{}: safetensors header length {} does not fit the file of {} bytes", f.path(), n,
         f.size());
  data_start = 8 + n;
  try {
    return nlohmann::json::parse(reinterpret_cast<const char*>(f.data()) + 8,
                                 reinterpret_cast<const char*>(f.data()) + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid safetensors header JSON: {}", f.path(), e.what());
  }
}

TensorView parse_entry(const MappedFile& f, const std::string& name, const nlohmann::json& e,
                       uint64_t data_start) {
  const std::string& path = f.path();
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
    fail("{}: tensor '{}' needs dtype, shape and data_offsets", path, name);
  const auto& jd = e["dtype"];
  const auto dt = jd.is_string() ? st_dtype(jd.get<std::string>()) : std::nullopt;
  if (!dt) fail("{}: tensor '{}' has unsupported dtype {}", path, name, jd.dump());
  TensorView t;
  t.name = name;
  t.file = path;
  t.dtype = *dt;
  const auto& js = e["shape"];
  if (!js.is_array() || js.size() > 8) fail("{}: tensor '{}' has an invalid shape", path, name);
  int64_t numel = 1;
  for (const auto& d : js) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40))
      fail("{}: tensor '{}' has an invalid shape {}", path, name, js.dump());
    const int64_t v = d.get<int64_t>();
    if (v > 0 && numel > (int64_t{1} << 50) / v)
      fail("{}: tensor '{}' shape {} is too large", path, name, js.dump());
    numel *= v;
    t.shape.push_back(v);
  }
  const auto& jo = e["data_offsets"];
  if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
      !jo[1].is_number_unsigned())
    fail("{}: tensor '{}' has invalid data_offsets {}", path, name, jo.dump());
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
  t.nbytes = want;
  return t;
}

}  // namespace

void SafetensorsSource::add_file(const std::string& path, const LoadOptions& opts) {
  auto f = MappedFile::open(path, opts);
  uint64_t data_start = 0;
  const nlohmann::json h = parse_header(*f, data_start);
  if (!h.is_object()) fail("{}: safetensors header is not a JSON object", path);
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    add_tensor(parse_entry(*f, it.key(), it.value(), data_start));
  }
  files_.push_back(std::move(f));
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open_file(const std::string& path,
                                                                const LoadOptions& opts) {
  return open_files({path}, opts);
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::open_files(
    const std::vector<std::string>& paths, const LoadOptions& opts) {
  std::unique_ptr<SafetensorsSource> s(new SafetensorsSource());
  for (const std::string& p : paths) s->add_file(p, opts);
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
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      fail("{}: invalid JSON: {}", index.string(), e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: no \"weight_map\" object", index.string());
    std::vector<std::string> shards;
    std::set<std::string> seen;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail("{}: weight_map['{}'] is not a file name", index.string(), it.key());
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        fail("{}: shard name '{}' must be a plain file name", index.string(), file);
      if (seen.insert(file).second) shards.push_back((d / file).string());
    }
    auto s = open_files(shards, opts);
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const TensorView* t = s->find(it.key());
      const std::string want = (d / it.value().get<std::string>()).string();
      if (!t || t->file != want)
        fail("{}: tensor '{}' is listed in {} but not found there", index.string(), it.key(), want);
    }
    s->desc_ = fmt::format("safetensors folder {} ({} shards)", dir, shards.size());
    return s;
  }
  for (const char* name : {"model.safetensors", "consolidated.safetensors"})
    if (fs::exists(d / name)) return open_file((d / name).string(), opts);
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(d, ec))
    if (e.path().extension() == ".safetensors") all.push_back(e.path().string());
  if (ec) fail("cannot list '{}': {}", dir, ec.message());
  if (all.empty()) fail("'{}' holds no .safetensors files", dir);
  std::sort(all.begin(), all.end());
  return open_files(all, opts);
}

std::string SafetensorsSource::description() const {
  return desc_;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const SafetensorsEntry& t : tensors) {
    h[t.name] = {{"dtype", st_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("cannot write '{}'", path);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  for (const SafetensorsEntry& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
  if (!out) fail("failed writing '{}'", path);
}

}  // namespace smoe
