#include "model/loader.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "model/config_sources.h"

namespace smoe {
namespace fs = std::filesystem;
namespace {

std::string first_existing(const fs::path& dir, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (fs::exists(dir / n)) return (dir / n).string();
  return "";
}

bool has_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[4] = {};
  in.read(m, 4);
  return in.gcount() == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

// tokenizer_config.json's chat template: a string, or a list of {name, template} (the "default"
// one, else the first).
std::string hf_chat_template(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  if (!fs::exists(p)) return {};
  const nlohmann::json j = read_json_file(p.string());
  const auto it = j.find("chat_template");
  if (it == j.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  std::string first;
  if (it->is_array())
    for (const auto& t : *it) {
      if (!t.is_object() || !t.contains("template") || !t["template"].is_string()) continue;
      if (first.empty()) first = t["template"].get<std::string>();
      if (t.value("name", "") == "default") return t["template"].get<std::string>();
    }
  return first;
}

OpenedModel open_folder(const fs::path& dir, const LoadOptions& opts) {
  OpenedModel m;
  m.path = dir.string();
  if (fs::exists(dir / "config.json")) {
    m.format = ModelFormat::HuggingFace;
    m.scheme = NameScheme::HuggingFace;
    m.config = config_from_hf(read_json_file((dir / "config.json").string()),
                              (dir / "config.json").string());
    m.tokenizer_hint = first_existing(dir, {"tokenizer.model", "tokenizer.json"});
    m.chat_template = hf_chat_template(dir);
  } else if (fs::exists(dir / "params.json")) {
    m.format = ModelFormat::Mistral;
    m.scheme = NameScheme::Mistral;
    m.config = config_from_mistral_params(read_json_file((dir / "params.json").string()),
                                          (dir / "params.json").string());
    m.tokenizer_hint = first_existing(
        dir, {"tokenizer.model", "tokenizer.model.v1", "tokenizer.model.v3", "tokenizer.json"});
  } else {
    fail(
        "'{}' is a folder without config.json (Hugging Face) or params.json (Mistral): point -m "
        "at a model folder or a .gguf file",
        m.path);
  }
  auto src = SafetensorsSource::open_dir(m.path, opts);
  m.format_desc = src->description();
  m.source = std::move(src);
  return m;
}

}  // namespace

OpenedModel open_model(const std::string& path, const LoadOptions& opts) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) fail("model '{}' does not exist", path);
  if (fs::is_directory(p, ec)) return open_folder(p, opts);

  OpenedModel m;
  m.path = path;
  const std::string fname = p.filename().string();
  if (fname == "config.json" || fname == "params.json") {
    m.format = ModelFormat::ConfigOnly;
    m.format_desc = "configuration only (no weights)";
    const nlohmann::json j = read_json_file(path);
    m.config =
        fname == "config.json" ? config_from_hf(j, path) : config_from_mistral_params(j, path);
    return m;
  }
  if (has_gguf_magic(path)) {
    std::shared_ptr<GgufFile> g = GgufFile::open(path, opts);
    m.format = ModelFormat::Gguf;
    m.scheme = NameScheme::Gguf;
    m.config = config_from_gguf(*g);
    m.format_desc = g->description();
    m.gguf = g;
    m.source = g;
    return m;
  }
  if (p.extension() == ".bin") {
    std::shared_ptr<Llama2cSource> s = Llama2cSource::open(path, opts);
    m.format = ModelFormat::Llama2c;
    m.scheme = NameScheme::Mistral;
    m.config = config_from_llama2c(s->header(), path);
    m.format_desc = s->description();
    m.source = s;
    return m;
  }
  fail("'{}' is neither a GGUF file, a llama2.c .bin checkpoint, nor a model folder", path);
}

}  // namespace smoe
