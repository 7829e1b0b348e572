// Reads a SentencePiece `tokenizer.model` (a serialized ModelProto) with a minimal protobuf
// wire-format reader: only the fields a BPE encoder needs.
#include "tokenizer/sp_model.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace smoe {
namespace {

// Protobuf wire format: varints, 32/64-bit fixed, length-delimited; field = (number << 3) | type.
class Proto {
 public:
  Proto(std::string_view b, const std::string& file) : b_(b), file_(file) {}
  bool done() const { return i_ >= b_.size(); }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i_ >= b_.size()) bad("truncated varint");
      const auto c = static_cast<uint8_t>(b_[i_++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    bad("varint too long");
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > b_.size() - i_) bad("length beyond the end");
    std::string_view s = b_.substr(i_, n);
    i_ += n;
    return s;
  }
  float fixed32f() {
    if (b_.size() - i_ < 4) bad("truncated float");
    float f;
    std::memcpy(&f, b_.data() + i_, 4);
    i_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        advance(8);
        break;
      case 2:
        bytes();
        break;
      case 5:
        advance(4);
        break;
      default:
        bad("unsupported wire type");
    }
  }

 private:
  void advance(size_t n) {
    if (b_.size() - i_ < n) bad("truncated field");
    i_ += n;
  }
  [[noreturn]] void bad(const char* what) const {
    fail("{}: not a valid SentencePiece model ({} at byte {})", file_, what, i_);
  }
  std::string_view b_;
  size_t i_ = 0;
  const std::string& file_;
};

PieceType piece_type(uint64_t t, const std::string& file) {
  if (t < 1 || t > 6) fail("{}: unknown SentencePiece piece type {}", file, t);
  return piece_type_from_id(static_cast<int64_t>(t));
}

void read_piece(std::string_view msg, Vocab& v) {
  Proto p(msg, v.origin);
  std::string piece;
  float score = 0;
  PieceType type = PieceType::Normal;
  while (!p.done()) {
    const uint64_t key = p.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = key & 7;
    if (field == 1 && wire == 2)
      piece = std::string(p.bytes());
    else if (field == 2 && wire == 5)
      score = p.fixed32f();
    else if (field == 3 && wire == 0)
      type = piece_type(p.varint(), v.origin);
    else
      p.skip(wire);
  }
  v.pieces.push_back(std::move(piece));
  v.scores.push_back(score);
  v.types.push_back(type);
}

void read_trainer_spec(std::string_view msg, Vocab& v, int& model_type) {
  Proto p(msg, v.origin);
  while (!p.done()) {
    const uint64_t key = p.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = key & 7;
    if (wire != 0) {
      p.skip(wire);
      continue;
    }
    const auto val = static_cast<int64_t>(p.varint());
    switch (field) {
      case 3:
        model_type = static_cast<int>(val);
        break;
      case 35:
        v.byte_fallback = val != 0;
        break;
      case 40:
        v.unk_id = static_cast<int32_t>(val);
        break;
      case 41:
        v.bos_id = static_cast<int32_t>(val);
        break;
      case 42:
        v.eos_id = static_cast<int32_t>(val);
        break;
      case 43:
        v.pad_id = static_cast<int32_t>(val);
        break;
      default:
        break;
    }
  }
}

void read_normalizer_spec(std::string_view msg, Vocab& v, std::string& name) {
  Proto p(msg, v.origin);
  while (!p.done()) {
    const uint64_t key = p.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = key & 7;
    if (field == 1 && wire == 2)
      name = std::string(p.bytes());
    else if (field == 3 && wire == 0)
      v.add_dummy_prefix = p.varint() != 0;
    else if (field == 4 && wire == 0)
      v.remove_extra_whitespaces = p.varint() != 0;
    else if (field == 5 && wire == 0)
      v.escape_whitespaces = p.varint() != 0;
    else
      p.skip(wire);
  }
}

}  // namespace

Vocab read_sentencepiece_model(std::string_view bytes, const std::string& origin) {
  Vocab v;
  v.origin = origin;
  v.byte_fallback = false;  // protobuf defaults
  v.remove_extra_whitespaces = true;
  int model_type = 1;  // UNIGRAM
  std::string normalizer = "nmt_nfkc";
  Proto p(bytes, origin);
  while (!p.done()) {
    const uint64_t key = p.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = key & 7;
    if (wire == 2 && field <= 3) {
      const std::string_view msg = p.bytes();
      if (field == 1)
        read_piece(msg, v);
      else if (field == 2)
        read_trainer_spec(msg, v, model_type);
      else
        read_normalizer_spec(msg, v, normalizer);
    } else {
      p.skip(wire);
    }
  }
  if (v.pieces.empty()) fail("{}: not a SentencePiece model (no pieces)", origin);
  if (model_type != 2)
    fail("{}: SentencePiece model type {} is not BPE (2); smoe implements BPE as Mistral uses it",
         origin, model_type);
  if (normalizer != "identity")
    fail("{}: SentencePiece normalizer '{}' is not supported (Mistral models use 'identity')",
         origin, normalizer);
  return v;
}

Vocab read_sentencepiece_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open tokenizer '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return read_sentencepiece_model(ss.str(), path);
}

}  // namespace smoe
