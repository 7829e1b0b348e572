// llama2.c checkpoints (`run.c`'s legacy version-0 format: 7 int32 header, then float32 tensors),
// e.g. stories260K.bin. Exposed as a WeightSource with Mistral "consolidated" names
// (tok_embeddings.weight, layers.L.attention.wq.weight, layers.L.feed_forward.w1.weight,
// norm.weight, output.weight) plus the header, so the model is built like any other dense
// Llama/Mistral.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/mapped_file.h"
#include "io/weight_source.h"

namespace smoe {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;  // vocab_size > 0 in the file: output.weight is the token embedding
};

class Llama2cSource : public WeightSource {
 public:
  // Validates the header (positive sizes, heads divide dim) and that the file is exactly as long
  // as the header implies (with or without the separate classifier).
  static std::unique_ptr<Llama2cSource> open(const std::string& path, const LoadOptions& opts = {});
  std::string description() const override;
  const Llama2cHeader& header() const { return header_; }

 private:
  Llama2cSource() = default;
  std::shared_ptr<MappedFile> file_;
  Llama2cHeader header_{};
};

}  // namespace smoe
