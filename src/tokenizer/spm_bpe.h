// SentencePiece BPE over a Vocab: normalise (dummy prefix, ▁ for spaces), split into characters
// (user-defined pieces kept whole), then repeatedly merge the adjacent pair whose joined piece has
// the highest score (ties: leftmost), with a priority queue: O(n log n). Characters the vocabulary
// lacks fall back to <0xXX> byte pieces.
#pragma once

#include <memory>
#include <unordered_map>
#include <utility>

#include "smoe/tokenizer.h"
#include "tokenizer/vocab.h"

namespace smoe {

class SpmBpeTokenizer : public Tokenizer {
 public:
  explicit SpmBpeTokenizer(Vocab v);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override;
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& opts) const override;
  int32_t n_vocab() const override { return static_cast<int32_t>(v_.pieces.size()); }
  int32_t bos_id() const override { return v_.bos_id; }
  int32_t eos_id() const override { return v_.eos_id; }
  int32_t unk_id() const override { return v_.unk_id; }
  bool add_bos_by_default() const override { return v_.add_bos; }
  const std::string& piece(int32_t id) const override;
  float score(int32_t id) const override;
  PieceType type(int32_t id) const override;
  std::string token_bytes(int32_t id, bool render_special) const override;

  const Vocab& vocab() const { return v_; }
  // Whether decoding drops the leading space of `id` when it comes first.
  bool strips_leading_space(int32_t id, const DecodeOptions& o) const;

  // The text as the model sees it: dummy prefix, ▁ for spaces (exposed for tests).
  std::string normalize(std::string_view text, bool at_start) const;

 private:
  // BPE of one normalised segment, ids appended to `out`.
  void encode_normalized(std::string_view s, std::vector<int32_t>& out) const;
  using RevMerge =
      std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>;
  void emit_symbol(std::string_view piece, const RevMerge& rev, std::vector<int32_t>& out) const;
  size_t match_user_defined(std::string_view s, size_t i) const;
  bool check_id(int32_t id) const { return id >= 0 && id < n_vocab(); }

  Vocab v_;
};

}  // namespace smoe
