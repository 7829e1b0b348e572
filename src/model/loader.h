// Opens whatever a user points smoe at and says what it is: a GGUF file, a Hugging Face folder
// (config.json + safetensors), Mistral's folder (params.json + consolidated.safetensors), a
// llama2.c checkpoint, or a bare config.json / params.json (configuration only, no weights).
#pragma once

#include <memory>
#include <string>

#include "io/mapped_file.h"
#include "io/weight_source.h"
#include "model/config.h"
#include "model/tensor_names.h"

namespace smoe {

class GgufFile;

enum class ModelFormat { Gguf, HuggingFace, Mistral, Llama2c, ConfigOnly };

struct OpenedModel {
  std::string path;
  ModelFormat format = ModelFormat::Gguf;
  std::string format_desc;  // "GGUF v3", "Hugging Face safetensors (2 shards)", ...
  ModelConfig config;
  NameScheme scheme = NameScheme::Gguf;
  std::shared_ptr<const WeightSource> source;  // null for ConfigOnly
  std::shared_ptr<const GgufFile> gguf;        // set for GGUF files (metadata, tokenizer)
  std::string tokenizer_hint;  // a tokenizer file or folder found beside the weights, or ""
  std::string chat_template;   // tokenizer_config.json's chat_template (HF folders), or ""
};

// Throws smoe::Error with a one-line reason (missing path, a folder without config.json or
// params.json, unknown file kind, ...).
OpenedModel open_model(const std::string& path, const LoadOptions& opts);

}  // namespace smoe
