// Tokenizer loaders and behaviours on small hand-made vocabularies, plus parse_special and the
// streaming decoder on the real tokenizers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "smoe/tokenizer.h"
#include "tokenizer/spm_bpe.h"

namespace smoe {
namespace {

namespace fs = std::filesystem;
const std::string kData = SMOE_SHARED_DATA_DIR;

std::string write_tmp(const std::string& name, const std::string& content) {
  const std::string p =
      (fs::temp_directory_path() / ("smoe_tok_" + std::to_string(::getpid()) + name)).string();
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

// ▁ a b ab ▁ab: merges a+b first (rank 0), then ▁+ab.
const char* kTokenizerJson = R"({
  "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                   {"id": 1, "content": "<s>", "special": true},
                   {"id": 2, "content": "</s>", "special": true}],
  "model": {"type": "BPE", "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁": 4, "a": 5, "b": 6, "ab": 7, "▁ab": 8},
    "merges": ["a b", "▁ ab"]}})";

TEST(Tokenizer, HuggingFaceTokenizerJson) {
  auto tok = Tokenizer::load(write_tmp("tokenizer.json", kTokenizerJson));
  EXPECT_EQ(tok->n_vocab(), 9);
  EXPECT_EQ(tok->encode("ab ba"), (std::vector<int32_t>{1, 8, 4, 6, 5}));
  EXPECT_EQ(tok->encode("a\n", {.add_bos = false}),
            (std::vector<int32_t>{4, 5, 3}));  // byte fallback
  EXPECT_EQ(tok->decode({1, 8, 4, 6, 5}), "ab ba");
  EXPECT_EQ(tok->type(1), PieceType::Control);
  EXPECT_EQ(tok->type(3), PieceType::Byte);
}

TEST(Tokenizer, EmptyAndUnknownInputs) {
  auto tok = Tokenizer::load(write_tmp("tokenizer.json", kTokenizerJson));
  EXPECT_EQ(tok->encode(""), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode("", {.add_bos = false}), std::vector<int32_t>{});
  // 'z' has no piece and no byte piece here: unknown.
  EXPECT_EQ(tok->encode("z", {.add_bos = false}), (std::vector<int32_t>{4, 0}));
  EXPECT_THROW(tok->piece(99), Error);
}

TEST(Tokenizer, BadFilesAreClearErrors) {
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.model"), Error);
  EXPECT_THROW(Tokenizer::load(write_tmp("bad.json", "{\"model\": {\"type\": \"WordPiece\"}}")),
               Error);
  EXPECT_THROW(Tokenizer::load(write_tmp("bad.model", std::string("\x0a\xff\xff\xff\xff\x0f", 6))),
               Error);
  EXPECT_THROW(Tokenizer::load(write_tmp("bad.bin", "xy")), Error);
}

TEST(Tokenizer, ControlTokensInTextOnlyWhenAsked) {
  const std::string v3 = kData + "/mistral-tokenizer.v3.model";
  if (!fs::exists(v3)) GTEST_SKIP() << "the v3 Mistral tokenizer is not in ../shared/data";
  auto tok = Tokenizer::load(v3);
  const auto special = tok->encode("[INST] hi [/INST]", {.add_bos = true, .parse_special = true});
  ASSERT_GE(special.size(), 4u);
  EXPECT_EQ(special[0], 1);
  EXPECT_EQ(special[1], 3);      // [INST]
  EXPECT_EQ(special.back(), 4);  // [/INST]
  const auto plain = tok->encode("[INST] hi [/INST]");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 3), 0)
      << "user text must not become control tokens";
  // As SentencePiece decodes these ids: the first text piece loses its leading space.
  EXPECT_EQ(tok->decode(special), "hi ");
  EXPECT_EQ(tok->decode(special, {.render_special = true}), "<s>[INST] hi [/INST]");
}

TEST(StreamDecoder, NeverEmitsHalfACharacter) {
  const std::string v1 = kData + "/mistral-tokenizer.v1.model";
  if (!fs::exists(v1)) GTEST_SKIP() << "the v1 Mistral tokenizer is not in ../shared/data";
  std::shared_ptr<const Tokenizer> tok = Tokenizer::load(v1);
  const std::string text = "Grüße 🧑🏿‍💻 東京 done";
  const auto ids = tok->encode(text);
  StreamDecoder dec(tok);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    // Every chunk is valid UTF-8 on its own.
    for (size_t i = 0; i < piece.size();) {
      const unsigned char c = static_cast<unsigned char>(piece[i]);
      const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      ASSERT_LE(i + len, piece.size()) << "split character in chunk";
      i += len;
    }
    out += piece;
  }
  out += dec.flush();
  EXPECT_EQ(out, text);
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(Tokenizer, Llama2cTokenizerBin) {
  const std::string p = kData + "/tok512.bin";
  if (!fs::exists(p)) GTEST_SKIP() << "tok512.bin is not in ../shared/data";
  auto tok = Tokenizer::load(p);
  EXPECT_EQ(tok->n_vocab(), 512);
  EXPECT_EQ(tok->encode("Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->decode({1, 403, 407, 261, 378}), "Once upon a time");
  EXPECT_EQ(tok->encode("a\nb", {.add_bos = false})[1], 13);  // newline: byte piece <0x0A>
}

}  // namespace
}  // namespace smoe
