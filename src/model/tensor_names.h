// The one table of tensor names: GGUF (llama.cpp), Hugging Face, and Mistral's own layout
// (also used for llama2.c checkpoints). Model code never looks tensors up by string after load.
#pragma once

#include <string>

namespace smoe {

enum class NameScheme { Gguf, HuggingFace, Mistral };

enum class WeightRole {
  TokEmbd,     // (vocab, dim)
  OutputNorm,  // (dim)
  Output,      // (vocab, dim)
  AttnNorm,    // (dim)
  Wq,          // (n_heads·head_dim, dim)
  Wk,          // (n_kv_heads·head_dim, dim)
  Wv,          // (n_kv_heads·head_dim, dim)
  Wo,          // (dim, n_heads·head_dim)
  FfnNorm,     // (dim)
  Router,      // (n_experts, dim)
  ExpertGate,  // one expert's w1: (hidden, dim)
  ExpertUp,    // one expert's w3: (hidden, dim)
  ExpertDown,  // one expert's w2: (dim, hidden)
  MergedGate,  // GGUF only: all experts' w1 (n_experts, hidden, dim)
  MergedUp,    // GGUF only: (n_experts, hidden, dim)
  MergedDown,  // GGUF only: (n_experts, dim, hidden)
  DenseGate,   // (hidden, dim)
  DenseUp,     // (hidden, dim)
  DenseDown,   // (dim, hidden)
};

// `layer` and `expert` are used by the roles that need them.
std::string tensor_name(NameScheme s, WeightRole r, int layer = 0, int expert = 0);

const char* scheme_name(NameScheme s);

}  // namespace smoe
