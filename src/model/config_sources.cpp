#include "model/config_sources.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "io/llama2c.h"

namespace smoe {
namespace {

int64_t gguf_required_int(const GgufFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) fail("{}: missing metadata key '{}'", f.path(), key);
  return *v;
}

// Integer field of a JSON object: required, or a default when `def` is given.
int64_t json_int(const nlohmann::json& j, const char* key, const std::string& path,
                 std::optional<int64_t> def = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    fail("{}: missing field '{}'", path, key);
  }
  if (!it->is_number_integer())
    fail("{}: field '{}' must be an integer, got {}", path, key, it->dump());
  return it->get<int64_t>();
}

double json_float(const nlohmann::json& j, const char* key, const std::string& path, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) fail("{}: field '{}' must be a number, got {}", path, key, it->dump());
  return it->get<double>();
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
}

ModelConfig config_from_gguf(const GgufFile& f) {
  auto arch = f.get_string("general.architecture");
  if (!arch) fail("{}: missing metadata key 'general.architecture'", f.path());
  if (*arch != "llama" && *arch != "mistral" && *arch != "mixtral")
    fail("{}: unsupported architecture '{}' (smoe runs llama-layout Mistral and Mixtral models)",
         f.path(), *arch);
  const std::string p = *arch + ".";
  ModelConfig c;
  c.dim = gguf_required_int(f, p + "embedding_length");
  c.n_layers = gguf_required_int(f, p + "block_count");
  c.n_heads = gguf_required_int(f, p + "attention.head_count");
  c.n_kv_heads = f.get_int(p + "attention.head_count_kv").value_or(c.n_heads);
  c.hidden_dim = gguf_required_int(f, p + "feed_forward_length");
  c.max_context = gguf_required_int(f, p + "context_length");
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  if (auto rd = f.get_int(p + "rope.dimension_count"); rd && *rd != c.head_dim)
    fail("{}: rope.dimension_count {} differs from head_dim {} (partial RoPE is not supported)",
         f.path(), *rd, c.head_dim);
  c.norm_eps =
      static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope_theta = static_cast<float>(f.get_float(p + "rope.freq_base").value_or(10000.0));
  c.n_experts = f.get_int(p + "expert_count").value_or(0);
  c.n_experts_used = f.get_int(p + "expert_used_count").value_or(0);
  c.sliding_window = f.get_int(p + "attention.sliding_window").value_or(0);
  if (auto v = f.get_int(p + "vocab_size")) {
    c.vocab_size = *v;
  } else if (const TensorView* t = f.find("token_embd.weight"); t && t->shape.size() == 2) {
    c.vocab_size = t->shape[0];
  } else if (auto toks = f.get_string_array("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int64_t>(toks->size());
  }
  c.tied_embeddings = f.find("output.weight") == nullptr;
  c.architecture = c.is_moe() ? "mixtral" : "mistral";
  c.validate(f.path());
  return c;
}

ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  std::string arch;
  if (auto it = j.find("architectures");
      it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    arch = (*it)[0].get<std::string>();
  ModelConfig c;
  if (arch == "MixtralForCausalLM") {
    c.architecture = "mixtral";
    c.n_experts = json_int(j, "num_local_experts", path);
    c.n_experts_used = json_int(j, "num_experts_per_tok", path);
  } else if (arch == "MistralForCausalLM" || arch == "LlamaForCausalLM") {
    c.architecture = "mistral";
  } else {
    fail(
        "{}: unsupported architecture '{}' (supported: MixtralForCausalLM, MistralForCausalLM, "
        "LlamaForCausalLM)",
        path, arch.empty() ? "<none>" : arch);
  }
  c.dim = json_int(j, "hidden_size", path);
  c.n_layers = json_int(j, "num_hidden_layers", path);
  c.n_heads = json_int(j, "num_attention_heads", path);
  c.n_kv_heads = json_int(j, "num_key_value_heads", path, c.n_heads);
  c.head_dim = json_int(j, "head_dim", path, c.n_heads > 0 ? c.dim / c.n_heads : 0);
  c.hidden_dim = json_int(j, "intermediate_size", path);
  c.vocab_size = json_int(j, "vocab_size", path);
  c.max_context = json_int(j, "max_position_embeddings", path, 4096);
  c.norm_eps = static_cast<float>(json_float(j, "rms_norm_eps", path, 1e-5));
  c.rope_theta = static_cast<float>(json_float(j, "rope_theta", path, 10000.0));
  c.sliding_window = json_int(j, "sliding_window", path, 0);
  if (auto it = j.find("tie_word_embeddings"); it != j.end() && it->is_boolean())
    c.tied_embeddings = it->get<bool>();
  c.validate(path);
  return c;
}

ModelConfig config_from_mistral_params(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  ModelConfig c;
  c.dim = json_int(j, "dim", path);
  c.n_layers = json_int(j, "n_layers", path);
  c.n_heads = json_int(j, "n_heads", path);
  c.n_kv_heads = json_int(j, "n_kv_heads", path, c.n_heads);
  c.head_dim = json_int(j, "head_dim", path, c.n_heads > 0 ? c.dim / c.n_heads : 0);
  c.hidden_dim = json_int(j, "hidden_dim", path);
  c.vocab_size = json_int(j, "vocab_size", path);
  c.norm_eps = static_cast<float>(json_float(j, "norm_eps", path, 1e-5));
  c.rope_theta = static_cast<float>(json_float(j, "rope_theta", path, 10000.0));
  c.sliding_window = json_int(j, "sliding_window", path, 0);
  c.max_context = json_int(j, "max_seq_len", path, 32768);
  if (auto it = j.find("moe"); it != j.end() && it->is_object()) {
    c.n_experts = json_int(*it, "num_experts", path);
    c.n_experts_used = json_int(*it, "num_experts_per_tok", path);
  }
  c.architecture = c.is_moe() ? "mixtral" : "mistral";
  c.validate(path);
  return c;
}

ModelConfig config_from_llama2c(const Llama2cHeader& h, const std::string& path) {
  ModelConfig c;
  c.architecture = "llama";
  c.dim = h.dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.n_heads > 0 ? h.dim / h.n_heads : 0;
  c.hidden_dim = h.hidden_dim;
  c.vocab_size = h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size;
  c.max_context = h.seq_len;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tied_embeddings = h.shared_classifier;
  c.validate(path);
  return c;
}

}  // namespace smoe
