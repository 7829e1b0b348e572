// Building a ModelConfig from each kind of model description.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "model/config.h"

namespace smoe {

class GgufFile;
struct Llama2cHeader;

// llama.cpp's keys under general.architecture ("llama"; Mixtral GGUFs use "llama" with
// llama.expert_count). Missing required keys are errors naming the key and the file.
ModelConfig config_from_gguf(const GgufFile& f);
// A Hugging Face config.json (MixtralForCausalLM, MistralForCausalLM, LlamaForCausalLM).
ModelConfig config_from_hf(const nlohmann::json& j, const std::string& path);
// Mistral's params.json (the reference implementation's folder layout).
ModelConfig config_from_mistral_params(const nlohmann::json& j, const std::string& path);
ModelConfig config_from_llama2c(const Llama2cHeader& h, const std::string& path);

// Reads and parses a JSON file; errors name the file and the parse position.
nlohmann::json read_json_file(const std::string& path);

}  // namespace smoe
