#include "smoe/tokenizer.h"
#include "tokenizer/utf8.h"

namespace smoe {

StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer> tok, DecodeOptions opts)
    : tok_(std::move(tok)), opts_(opts) {}

void StreamDecoder::reset() {
  pending_.clear();
  first_ = true;
}

std::string StreamDecoder::push(int32_t id) {
  // Only byte pieces can leave half a character pending; any other piece ends the byte run, as
  // in Tokenizer::decode, so a cut character becomes U+FFFD.
  const bool is_byte = tok_->type(id) == PieceType::Byte;
  std::string out = is_byte ? std::string() : flush();
  std::string b = tok_->token_bytes(id, opts_.render_special);
  if (b.empty()) return out;
  // The first text piece follows Tokenizer::decode's leading-space rule (byte pieces are raw
  // bytes, possibly half a character, so they are taken as they are).
  if (first_ && !is_byte) b = tok_->decode({id}, opts_);
  first_ = false;
  pending_ += b;
  // Emit every complete character; keep a tail that may still become one.
  size_t i = 0;
  while (i < pending_.size()) {
    const size_t n = utf8::valid_char_len(pending_, i);
    if (n) {
      out.append(pending_, i, n);
      i += n;
    } else if (utf8::is_incomplete_prefix(pending_, i)) {
      break;
    } else {
      out += utf8::kReplacement;
      ++i;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace smoe
