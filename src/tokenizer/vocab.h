// A SentencePiece-style vocabulary: pieces with scores and types, the special ids, and the
// normalisation flags, whatever file it came from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "smoe/tokenizer.h"

namespace smoe {

inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 '▁'

// Lets the piece maps be searched with string_views (no allocation per lookup).
struct PieceHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>>;

// SentencePiece's piece type numbering, also used by GGUF's tokenizer.ggml.token_type:
// 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte. Others: Normal.
inline PieceType piece_type_from_id(int64_t t) {
  switch (t) {
    case 2:
      return PieceType::Unknown;
    case 3:
      return PieceType::Control;
    case 4:
      return PieceType::UserDefined;
    case 5:
      return PieceType::Unused;
    case 6:
      return PieceType::Byte;
    default:
      return PieceType::Normal;
  }
}

struct Vocab {
  std::vector<std::string> pieces;  // as stored, spaces written as ▁
  std::vector<float> scores;
  std::vector<PieceType> types;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  bool escape_whitespaces = true;
  bool byte_fallback = true;
  bool add_bos = true;  // prompts start with BOS
  std::string origin;   // file it came from, for messages

  // Fills the lookup tables below; checks ids and duplicates. Throws smoe::Error.
  void finalize();

  // Normal, user-defined and unused pieces: the ones BPE merges into.
  PieceMap mergeable;
  // Control / unknown pieces by text (for parse_special and rendering).
  PieceMap special;
  // Control, unknown and byte pieces: SentencePiece looks these up first.
  PieceMap reserved;
  int32_t byte_ids[256];                  // <0xXX> piece of each byte, -1 when absent
  std::vector<std::string> user_defined;  // matched literally in the input, longest first
  bool has_unused = false;                // any Unused piece (needs resegmentation)
  // Which bytes start a user-defined / special piece (skips the literal search elsewhere).
  bool user_defined_first[256] = {};
  bool special_first[256] = {};
  std::vector<std::pair<std::string, int32_t>> special_by_length;  // longest first

  // The id SentencePiece gives a piece: control / unknown / byte text first, then the others,
  // else unk_id.
  int32_t piece_to_id(std::string_view p) const;
};

}  // namespace smoe
