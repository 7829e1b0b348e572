#include "tokenizer/gguf_vocab.h"

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "tokenizer/spm_bpe.h"

namespace smoe {
namespace {

int32_t to_gguf_type(PieceType t) {
  switch (t) {
    case PieceType::Normal:
      return 1;
    case PieceType::Unknown:
      return 2;
    case PieceType::Control:
      return 3;
    case PieceType::UserDefined:
      return 4;
    case PieceType::Unused:
      return 5;
    case PieceType::Byte:
      return 6;
  }
  return 1;
}

}  // namespace

std::shared_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& f) {
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) fail("{}: no tokenizer (tokenizer.ggml.model is missing)", f.path());
  if (*model != "llama")
    fail(
        "{}: tokenizer model '{}' is not supported (smoe reads SentencePiece 'llama' vocabularies)",
        f.path(), *model);
  const auto* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) fail("{}: tokenizer.ggml.tokens is missing", f.path());
  Vocab v;
  v.origin = f.path();
  v.pieces = *tokens;
  const size_t n = tokens->size();
  v.scores.assign(n, 0.0f);
  v.types.assign(n, PieceType::Normal);
  if (const auto* s = f.get_float_array("tokenizer.ggml.scores")) {
    if (s->size() != n) fail("{}: {} tokens but {} scores", f.path(), n, s->size());
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>((*s)[i]);
  }
  if (const auto* t = f.get_int_array("tokenizer.ggml.token_type")) {
    if (t->size() != n) fail("{}: {} tokens but {} token types", f.path(), n, t->size());
    for (size_t i = 0; i < n; ++i) v.types[i] = piece_type_from_id((*t)[i]);
  }
  v.unk_id = static_cast<int32_t>(f.get_int("tokenizer.ggml.unknown_token_id").value_or(0));
  v.bos_id = static_cast<int32_t>(f.get_int("tokenizer.ggml.bos_token_id").value_or(1));
  v.eos_id = static_cast<int32_t>(f.get_int("tokenizer.ggml.eos_token_id").value_or(2));
  v.pad_id = static_cast<int32_t>(f.get_int("tokenizer.ggml.padding_token_id").value_or(-1));
  v.add_dummy_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(true);
  v.remove_extra_whitespaces =
      f.get_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);
  v.byte_fallback = true;
  return std::make_shared<SpmBpeTokenizer>(std::move(v));
}

void write_tokenizer_gguf(const Tokenizer& tok, GgufWriter& w) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> pieces(n);
  std::vector<float> scores(n);
  std::vector<int32_t> types(n);
  for (int32_t i = 0; i < n; ++i) {
    pieces[i] = tok.piece(i);
    scores[i] = tok.score(i);
    types[i] = to_gguf_type(tok.type(i));
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", pieces);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  if (tok.unk_id() >= 0)
    w.set_u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(tok.unk_id()));
  if (tok.bos_id() >= 0)
    w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tok.bos_id()));
  if (tok.eos_id() >= 0)
    w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tok.eos_id()));
  w.set_bool("tokenizer.ggml.add_bos_token", tok.add_bos_by_default());
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  if (const auto* spm = dynamic_cast<const SpmBpeTokenizer*>(&tok)) {
    w.set_bool("tokenizer.ggml.add_space_prefix", spm->vocab().add_dummy_prefix);
    if (spm->vocab().remove_extra_whitespaces)
      w.set_bool("tokenizer.ggml.remove_extra_whitespaces", true);
  }
}

}  // namespace smoe
