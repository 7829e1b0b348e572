// Model conversion: any model smoe reads → one GGUF file (llama.cpp layout, merged expert
// tensors), optionally changing the weights' dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace smoe {

struct ConvertOptions {
  std::string input;           // .gguf, Hugging Face / Mistral folder, llama2.c .bin
  std::string output;          // .gguf to write
  std::string tokenizer_path;  // optional tokenizer to embed (else the model's own, if any)
  std::string out_type;        // "" keeps each tensor's dtype; "f32", "f16", "bf16"
  // (tensors done, tensors total, bytes written so far)
  std::function<void(int64_t, int64_t, uint64_t)> progress;
};

struct ConvertSummary {
  int64_t n_tensors = 0;
  uint64_t bytes = 0;
  bool has_tokenizer = false;
};

ConvertSummary convert_model(const ConvertOptions& opts);

}  // namespace smoe
