// Vocabulary loaders, one per file kind a user may have.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/vocab.h"

namespace smoe {

// SentencePiece `tokenizer.model` (protobuf ModelProto). BPE models with the identity normalizer.
Vocab read_sentencepiece_model(std::string_view bytes, const std::string& origin);
Vocab read_sentencepiece_file(const std::string& path);
// Hugging Face `tokenizer.json` with a BPE model (scores derived from the merge ranks).
Vocab read_hf_tokenizer_json(const std::string& path);
// llama2.c `tokenizer.bin`.
Vocab read_llama2c_tokenizer(const std::string& path);

}  // namespace smoe
