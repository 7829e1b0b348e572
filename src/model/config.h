// One ModelConfig, built and validated from any source: GGUF metadata, a Hugging Face config.json,
// Mistral's params.json, or a llama2.c header. Everything downstream reads only this.
#pragma once

#include <cstdint>
#include <string>

namespace smoe {

struct ModelConfig {
  std::string architecture;  // "mixtral" (MoE) or "mistral" / "llama" (dense)
  int64_t dim = 0;           // model width
  int64_t n_layers = 0;
  int64_t n_heads = 0;     // query heads
  int64_t n_kv_heads = 0;  // key/value heads (GQA when < n_heads)
  int64_t head_dim = 0;
  int64_t hidden_dim = 0;  // SwiGLU width of one expert (or of the dense FFN)
  int64_t vocab_size = 0;
  int64_t n_experts = 0;  // 0: dense feed-forward
  int64_t n_experts_used = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int64_t sliding_window = 0;  // 0: full attention
  int64_t max_context = 0;     // trained context length
  bool tied_embeddings = false;

  bool is_moe() const { return n_experts > 0; }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }

  // Throws smoe::Error naming `origin` and the inconsistent fields.
  void validate(const std::string& origin) const;
};

struct ParamCounts {
  int64_t total = 0;   // every stored parameter
  int64_t active = 0;  // parameters used for one token (top-k experts only)
};
ParamCounts count_params(const ModelConfig& c);

}  // namespace smoe
