// Public tokenizer API: SentencePiece-style BPE as Mistral / Mixtral use it, bit-exact with the
// reference SentencePiece library. Loaded from a GGUF file's tokenizer.ggml.* metadata, a
// SentencePiece `tokenizer.model`, a Hugging Face `tokenizer.json` (or a folder holding either), or
// llama2.c's `tokenizer.bin`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace smoe {

enum class PieceType : uint8_t { Normal, Unknown, Control, UserDefined, Byte, Unused };

struct EncodeOptions {
  bool add_bos = true;
  bool parse_special = false;  // recognise control tokens written in the text, e.g. "[INST]" in v3
};

struct DecodeOptions {
  bool render_special = false;  // print control tokens (<s>, </s>, [INST]) instead of hiding them
  bool strip_leading_space =
      true;  // drop the dummy-prefix space of the first piece, as SentencePiece does
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Detects the kind from the content / folder. Throws smoe::Error with a clear message.
  static std::shared_ptr<Tokenizer> load(const std::string& path);

  virtual std::vector<int32_t> encode(std::string_view text,
                                      const EncodeOptions& opts = {}) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids,
                             const DecodeOptions& opts = {}) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  // Whether prompts start with BOS for this model (GGUF's tokenizer.ggml.add_bos_token).
  virtual bool add_bos_by_default() const { return true; }
  virtual const std::string& piece(int32_t id) const = 0;  // raw piece text ("▁Hello", "<0x0A>")
  virtual float score(int32_t id) const = 0;
  virtual PieceType type(int32_t id) const = 0;
  // Bytes this id contributes to decoded text (byte pieces give their byte, ▁ gives a space,
  // control pieces give "" unless render_special).
  virtual std::string token_bytes(int32_t id, bool render_special = false) const = 0;
};

// Turns a stream of ids into text without ever emitting half of a multi-byte UTF-8 character and
// with the same leading-space rule as Tokenizer::decode.
class StreamDecoder {
 public:
  explicit StreamDecoder(std::shared_ptr<const Tokenizer> tok, DecodeOptions opts = {});
  // Returns the complete UTF-8 text now available (possibly empty).
  std::string push(int32_t id);
  // Whatever is pending at the end (invalid bytes are emitted as U+FFFD).
  std::string flush();
  void reset();

 private:
  std::shared_ptr<const Tokenizer> tok_;
  DecodeOptions opts_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace smoe
