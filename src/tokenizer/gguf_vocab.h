// The tokenizer stored in a GGUF file's tokenizer.ggml.* metadata, read and written.
#pragma once

#include <memory>

#include "smoe/tokenizer.h"

namespace smoe {

class GgufFile;
class GgufWriter;

// Throws smoe::Error naming the file when the GGUF carries no (or a malformed) tokenizer.
std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f);
// Writes the tokenizer.ggml.* keys.
void write_tokenizer_gguf(const Tokenizer& tok, GgufWriter& w);

}  // namespace smoe
