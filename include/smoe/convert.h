// Model conversion: any model smoe reads → one GGUF file (llama.cpp layout, merged expert
// tensors), optionally changing the weights' dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace smoe {

// Every output type `quantize` writes, as users read it in help and errors (a unit test checks
// that each one parses and that every type the quantizers write is named).
inline constexpr std::string_view kOutputTypes =
    "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q2_K_S, Q2_K_M, "
    "Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M";

struct ConvertOptions {
  std::string input;           // .gguf, Hugging Face / Mistral folder, llama2.c .bin
  std::string output;          // .gguf to write
  std::string tokenizer_path;  // optional tokenizer to embed (else the model's own, if any)
  // "" keeps each tensor's dtype; else one of kOutputTypes: a k-quant with _S is that type
  // alone, with _M the sensitive tensors are Q6_K.
  // The router and norms stay f32 whatever the type.
  std::string out_type;
  // (tensors done, tensors total, bytes written so far)
  std::function<void(int64_t, int64_t, uint64_t)> progress;
};

struct TensorReport {
  std::string name;
  std::string dtype;
  double relative_rmse = 0;  // of the written values against the source
  uint64_t bytes = 0;
  // The type asked for when this tensor could not take it (rows too short for its blocks, so
  // `dtype` is Q8_0 or F16 instead); empty when it got what was asked.
  std::string wanted;
};

struct ConvertSummary {
  std::vector<TensorReport> tensors;
  int64_t n_tensors = 0;
  uint64_t bytes = 0;
  bool has_tokenizer = false;
};

ConvertSummary convert_model(const ConvertOptions& opts);

}  // namespace smoe
