// TEMPORARY: replaced when the tokenizer lands.
#include "core/error.h"
#include "tokenizer/gguf_vocab.h"

namespace smoe {
std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile&) {
  fail("tokenizer not built");
}
std::shared_ptr<Tokenizer> Tokenizer::load(const std::string&) {
  fail("tokenizer not built");
}
}  // namespace smoe
namespace smoe {
void write_tokenizer_gguf(const Tokenizer&, GgufWriter&) { fail("tokenizer not built"); }
StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer> tok, DecodeOptions opts)
    : tok_(std::move(tok)), opts_(opts) {}
std::string StreamDecoder::push(int32_t) { return ""; }
std::string StreamDecoder::flush() { return ""; }
}  // namespace smoe
