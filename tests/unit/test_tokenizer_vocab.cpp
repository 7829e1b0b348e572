// The SentencePiece BPE encoder and decoder on a hand-made tokenizer.model (written here in the
// protobuf wire format), the GGUF and llama2.c loaders, the streaming decoder, and loader errors.
// Expected ids were produced by the reference library (python3-sentencepiece 0.1.97) from the very
// same model bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io_test_util.h"
#include "smoe/tokenizer.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/sp_model.h"
#include "tokenizer/spm_bpe.h"

namespace smoe {
namespace {

using testing::TempDir;
using Ids = std::vector<int32_t>;
const std::string kVocabData = SMOE_SHARED_DATA_DIR;

// The expression throws smoe::Error whose message contains `part`.
#define EXPECT_THAT_ERROR(expr, part)                                  \
  do {                                                                 \
    const std::string msg_ = testing::error_of([&] { (void)(expr); }); \
    EXPECT_TRUE(testing::contains(msg_, part))                         \
        << "message: '" << msg_ << "', wanted '" << (part) << "'";     \
  } while (0)

void write_file(const std::string& p, const std::string& b) {
  testing::write_all(p, testing::Bytes(b.begin(), b.end()));
}

// --- a minimal protobuf writer -----------------------------------------------------------------
std::string varint(uint64_t v) {
  std::string o;
  do {
    uint8_t c = v & 0x7f;
    v >>= 7;
    o += static_cast<char>(v ? c | 0x80 : c);
  } while (v);
  return o;
}
std::string vfield(int f, uint64_t v) {
  return varint(static_cast<uint64_t>(f) << 3) + varint(v);
}
std::string bfield(int f, const std::string& b) {
  return varint(static_cast<uint64_t>(f) << 3 | 2) + varint(b.size()) + b;
}
std::string ffield(int f, float x) {
  std::string b(4, '\0');
  std::memcpy(b.data(), &x, 4);
  return varint(static_cast<uint64_t>(f) << 3 | 5) + b;
}

struct P {
  std::string piece;
  float score;
  int type;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
};

struct ModelSpec {
  bool dummy_prefix = true, remove_extra_ws = false, byte_fallback = true;
  int model_type = 2;
  std::string normalizer = "identity";
};

std::string model_bytes(const std::vector<P>& pieces, const ModelSpec& m = {}) {
  std::string out;
  for (const P& p : pieces)
    out += bfield(1, bfield(1, p.piece) + ffield(2, p.score) + vfield(3, p.type));
  out += bfield(2, vfield(3, m.model_type) + vfield(35, m.byte_fallback) + vfield(40, 0) +
                       vfield(41, 1) + vfield(42, 2) + vfield(43, ~uint64_t{0}));
  out += bfield(3, bfield(1, m.normalizer) + vfield(3, m.dummy_prefix) +
                       vfield(4, m.remove_extra_ws) + vfield(5, 1));
  return out;
}

// ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, 259 [INST] (control), 260 <x> (user
// defined), 261 ▁, 262 a, 263 b, 264 c, 265 ab, 266 bc (same score as ab), 267 ▁a,
// 268 abc (unused), 269 ▁ab, 270 cc, 271 ▁▁.
std::vector<P> tiny_pieces(bool with_bytes = true) {
  std::vector<P> v = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}};
  if (with_bytes)
    for (int b = 0; b < 256; ++b) v.push_back({fmt::format("<0x{:02X}>", b), 0, 6});
  const std::vector<P> rest = {{"[INST]", 0, 3},
                               {"<x>", 0, 4},
                               {"\xE2\x96\x81", -1, 1},
                               {"a", -2, 1},
                               {"b", -3, 1},
                               {"c", -4, 1},
                               {"ab", -5, 1},
                               {"bc", -5, 1},
                               {"\xE2\x96\x81"
                                "a",
                                -6, 1},
                               {"abc", -7, 5},
                               {"\xE2\x96\x81"
                                "ab",
                                -8, 1},
                               {"cc", -9, 1},
                               {"\xE2\x96\x81\xE2\x96\x81", -10, 1}};
  v.insert(v.end(), rest.begin(), rest.end());
  return v;
}

std::shared_ptr<Tokenizer> tiny(const ModelSpec& m = {}, bool with_bytes = true) {
  return std::make_shared<SpmBpeTokenizer>(
      read_sentencepiece_model(model_bytes(tiny_pieces(with_bytes), m), "tiny.model"));
}

const EncodeOptions kNoBos{.add_bos = false};

TEST(SpmBpe, MergesByScoreLeftmostOnTies) {
  auto t = tiny();
  EXPECT_EQ(t->encode("abc", kNoBos), (Ids{261, 265, 264}));  // ab and bc tie: ab is leftmost
  EXPECT_EQ(t->encode("bca", kNoBos), (Ids{261, 266, 262}));
  EXPECT_EQ(t->encode("ab c", kNoBos), (Ids{269, 261, 264}));
  EXPECT_EQ(t->encode("abcabc", kNoBos), (Ids{261, 265, 264, 265, 264}));
  EXPECT_EQ(t->encode("abc"), (Ids{1, 261, 265, 264}));
  EXPECT_EQ(t->encode(" ", kNoBos), (Ids{271}));  // dummy prefix before a leading space
  EXPECT_EQ(t->encode("  a   b  ", kNoBos), (Ids{271, 267, 271, 261, 263, 271}));
}

TEST(SpmBpe, UnusedPiecesAreSplitBackIntoTheirPair) {
  // "abc" (unused) is made from ab + c: emitted as those two, not as characters.
  auto t = tiny();
  EXPECT_EQ(t->type(268), PieceType::Unused);
  EXPECT_EQ(t->encode("abcc", kNoBos), (Ids{261, 265, 264, 264}));
}

TEST(SpmBpe, UserDefinedPiecesMatchLiterallyControlPiecesDoNot) {
  auto t = tiny();
  EXPECT_EQ(t->encode("a<x>b", kNoBos), (Ids{267, 260, 263}));
  EXPECT_EQ(t->encode("<x>", kNoBos), (Ids{261, 260}));
  EXPECT_EQ(t->encode("[INST]a", kNoBos), (Ids{261, 94, 76, 81, 86, 87, 96, 262}));
  EXPECT_EQ(t->encode("[INST]a", {.add_bos = false, .parse_special = true}), (Ids{259, 262}));
}

TEST(SpmBpe, ByteFallbackAndUnknown) {
  auto t = tiny();
  EXPECT_EQ(t->encode("\xC3\xA9\n", kNoBos), (Ids{261, 198, 172, 13}));  // é and newline
  EXPECT_EQ(t->encode("zz", kNoBos), (Ids{261, 125, 125}));
  // Invalid UTF-8: each bad byte is U+FFFD (EF BF BD), here as three byte pieces.
  EXPECT_EQ(t->encode("\xFF", kNoBos), (Ids{261, 242, 194, 192}));
  // Without byte fallback a run of unknown characters is one <unk>.
  auto nb = tiny({.byte_fallback = false}, false);
  EXPECT_EQ(nb->encode("zz", kNoBos), (Ids{5, 0}));
  EXPECT_EQ(nb->encode("[INST]a", kNoBos), (Ids{5, 0, 6}));
  EXPECT_EQ(nb->encode("zaz", kNoBos), (Ids{5, 0, 6, 0}));
}

TEST(SpmBpe, NoDummyPrefixAndRemoveExtraWhitespaces) {
  auto t = tiny({.dummy_prefix = false, .remove_extra_ws = true});
  EXPECT_EQ(t->encode("abc", kNoBos), (Ids{265, 264}));
  EXPECT_EQ(t->encode("  a   b  ", kNoBos), (Ids{262, 261, 263}));
  EXPECT_EQ(t->encode(" ", kNoBos), Ids{});
  EXPECT_EQ(t->encode("a \xE2\x96\x81", kNoBos), (Ids{262}));  // trailing ▁ trimmed too
  EXPECT_EQ(t->decode({261, 267}), "a");  // leading spaces dropped until text comes out
  EXPECT_EQ(t->decode({271, 267}), "  a");
}

TEST(SpmBpe, DecodeAsTheReference) {
  auto t = tiny();
  EXPECT_EQ(t->decode({0}), " \xE2\x81\x87 ");  // <unk> keeps its spaces
  EXPECT_EQ(t->decode({1, 0, 262}), " \xE2\x81\x87 a");
  EXPECT_EQ(t->decode({198, 172}), "\xC3\xA9");
  EXPECT_EQ(t->decode({198, 2, 172}), "\xEF\xBF\xBD\xEF\xBF\xBD");  // </s> ends the byte run
  EXPECT_EQ(t->decode({261, 262}), "a");
  EXPECT_EQ(t->decode({267, 263}), "ab");
  EXPECT_EQ(t->decode({68, 267}), "A a");  // a byte piece first: the next ▁ stays
  EXPECT_EQ(t->decode({261, 267}), " a");  // only the first piece loses its ▁
  EXPECT_EQ(t->decode({1, 267, 2}, {.render_special = true}), "<s> a</s>");
  EXPECT_EQ(t->decode({267}, {.strip_leading_space = false}), " a");
  EXPECT_EQ(t->token_bytes(13), "\n");
  EXPECT_EQ(t->token_bytes(1), "");
  EXPECT_EQ(t->token_bytes(1, true), "<s>");
}

TEST(StreamDecoder, HoldsSplitCharactersAndEndsByteRuns) {
  std::shared_ptr<const Tokenizer> t = tiny();
  StreamDecoder d(t);
  EXPECT_EQ(d.push(1), "");
  EXPECT_EQ(d.push(267), "a");  // dummy-prefix space dropped
  EXPECT_EQ(d.push(198), "");   // first half of é
  EXPECT_EQ(d.push(172), "\xC3\xA9");
  EXPECT_EQ(d.push(267), " a");
  EXPECT_EQ(d.push(198), "");
  EXPECT_EQ(d.push(2), "\xEF\xBF\xBD");  // a control piece ends the run: the half is U+FFFD
  EXPECT_EQ(d.push(198), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(0x41 + 3), "A");
  d.reset();
  EXPECT_EQ(d.push(267), "a");  // after reset the leading space rule applies again
  // A 4-byte character fed one byte piece at a time (🚀 F0 9F 9A 80).
  StreamDecoder e(t);
  std::string got;
  for (uint8_t b : {0xF0, 0x9F, 0x9A, 0x80}) {
    const std::string piece = e.push(3 + b);
    if (b != 0x80) {
      EXPECT_EQ(piece, "") << "emitted part of a character";
    }
    got += piece;
  }
  EXPECT_EQ(got, "\xF0\x9F\x9A\x80");
  // Random id streams decode exactly as decode() does.
  std::vector<int32_t> ids;
  uint32_t x = 12345;
  for (int i = 0; i < 4000; ++i) {
    x = x * 1664525u + 1013904223u;
    ids.push_back(static_cast<int32_t>((x >> 8) % 272));
  }
  for (size_t start = 0; start < ids.size(); start += 40) {
    const Ids part(ids.begin() + start, ids.begin() + start + 40);
    StreamDecoder s(t);
    std::string streamed;
    for (int32_t id : part) streamed += s.push(id);
    streamed += s.flush();
    ASSERT_EQ(streamed, t->decode(part)) << "ids from " << start;
  }
}

TEST(SpmBpe, SentencePieceLoaderErrors) {
  const auto pieces = tiny_pieces();
  auto load = [](const std::string& b) { return read_sentencepiece_model(b, "t.model"); };
  EXPECT_THAT_ERROR(load(model_bytes(pieces, {.model_type = 1})), "not BPE");
  EXPECT_THAT_ERROR(load(model_bytes(pieces, {.normalizer = "nmt_nfkc"})), "nmt_nfkc");
  EXPECT_THAT_ERROR(load(model_bytes({{"a", 0, 9}})), "piece type 9");
  EXPECT_THAT_ERROR(load(model_bytes({})), "no pieces");
  const std::string good = model_bytes(pieces);
  EXPECT_THAT_ERROR(load(good.substr(0, good.size() / 2)), "t.model");
  EXPECT_THAT_ERROR(load(std::string("\x0a\xff\xff\xff\xff\x0f", 6)), "beyond the end");
  EXPECT_THAT_ERROR(load(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12)),
                    "varint");
  EXPECT_THAT_ERROR(load(std::string("\x0b", 1)), "wire type");
}

TEST(SpmBpe, GgufRoundTripKeepsEverything) {
  TempDir d;
  auto check = [&](const Tokenizer& t, const std::vector<std::string>& texts) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    write_tokenizer_gguf(t, w);
    w.write(d / "t.gguf");
    auto back = Tokenizer::load(d / "t.gguf");
    ASSERT_EQ(back->n_vocab(), t.n_vocab());
    for (int32_t i = 0; i < t.n_vocab(); ++i) {
      ASSERT_EQ(back->piece(i), t.piece(i)) << i;
      ASSERT_EQ(back->score(i), t.score(i)) << i;
      ASSERT_EQ(back->type(i), t.type(i)) << i;
    }
    EXPECT_EQ(back->bos_id(), t.bos_id());
    EXPECT_EQ(back->eos_id(), t.eos_id());
    EXPECT_EQ(back->unk_id(), t.unk_id());
    for (const std::string& x : texts) EXPECT_EQ(back->encode(x), t.encode(x)) << x;
  };
  check(*tiny(), {"abc", "a<x>b zz", " \xC3\xA9\n", "abcc"});
  check(*tiny({.dummy_prefix = false, .remove_extra_ws = true}), {"  a   b  ", "abc"});
  const std::string v1 = kVocabData + "/mistral-tokenizer.v1.model";
  if (!std::filesystem::exists(v1))
    GTEST_SKIP() << "the v1 Mistral tokenizer is not in ../shared/data";
  check(*Tokenizer::load(v1),
        {"Hello world", " Grüße 🧑🏿‍💻 東京\n\tcode  ", "12345 [INST]"});
}

TEST(SpmBpe, GgufErrorsNameTheKey) {
  TempDir d;
  auto write = [&](auto&& fill) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    fill(w);
    w.write(d / "t.gguf");
    return d / "t.gguf";
  };
  EXPECT_THAT_ERROR(Tokenizer::load(write([](GgufWriter&) {})), "tokenizer.ggml.model");
  EXPECT_THAT_ERROR(
      Tokenizer::load(write([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "gpt2"); })),
      "'gpt2'");
  EXPECT_THAT_ERROR(
      Tokenizer::load(write([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "llama"); })),
      "tokenizer.ggml.tokens");
  EXPECT_THAT_ERROR(Tokenizer::load(write([](GgufWriter& w) {
                      w.set_string("tokenizer.ggml.model", "llama");
                      w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
                      w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0});
                    })),
                    "3 scores");
  EXPECT_THAT_ERROR(Tokenizer::load(write([](GgufWriter& w) {
                      w.set_string("tokenizer.ggml.model", "llama");
                      w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
                      w.set_i32_array("tokenizer.ggml.token_type", {2, 3});
                    })),
                    "2 token types");
  EXPECT_THAT_ERROR(Tokenizer::load(write([](GgufWriter& w) {
                      w.set_string("tokenizer.ggml.model", "llama");
                      w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
                      w.set_u32("tokenizer.ggml.bos_token_id", 7);
                    })),
                    "outside the vocabulary");
}

std::string llama2c_bin(const std::vector<std::pair<std::string, float>>& pieces, int max_len) {
  std::string b(reinterpret_cast<const char*>(&max_len), 4);
  for (const auto& [p, score] : pieces) {
    const int32_t len = static_cast<int32_t>(p.size());
    b.append(reinterpret_cast<const char*>(&score), 4);
    b.append(reinterpret_cast<const char*>(&len), 4);
    b += p;
  }
  return b;
}

TEST(SpmBpe, Llama2cTokenizerBin) {
  TempDir d;
  std::vector<std::pair<std::string, float>> pieces = {
      {"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0}};
  for (int b = 0; b < 256; ++b) pieces.push_back({fmt::format("<0x{:02X}>", b), 0});
  pieces.insert(pieces.end(), {{" ", -1}, {"h", -2}, {"i", -3}, {"hi", -4}, {" hi", -5}});
  write_file(d / "tokenizer.bin", llama2c_bin(pieces, 6));
  auto t = Tokenizer::load(d / "tokenizer.bin");
  EXPECT_EQ(t->piece(263),
            "\xE2\x96\x81"
            "hi");  // stored with a plain space
  EXPECT_EQ(t->piece(1), "<s>");
  EXPECT_EQ(t->type(2), PieceType::Control);
  EXPECT_EQ(t->type(3 + 10), PieceType::Byte);
  EXPECT_EQ(t->encode("hi hi\n"), (Ids{1, 263, 263, 13}));
  EXPECT_EQ(t->decode({1, 263, 263, 13}), "hi hi\n");
  const std::string whole = llama2c_bin(pieces, 6);
  write_file(d / "cut.bin", whole.substr(0, whole.size() - 2));
  EXPECT_THAT_ERROR(Tokenizer::load(d / "cut.bin"), "truncated");
  write_file(d / "neg.bin", llama2c_bin({{"a", 0}}, -3));
  EXPECT_THAT_ERROR(Tokenizer::load(d / "neg.bin"), "not a llama2.c tokenizer");
}

TEST(SpmBpe, LoadFindsTheTokenizerInAFolder) {
  TempDir d;
  std::filesystem::create_directories(d / "model");
  EXPECT_THAT_ERROR(Tokenizer::load(d / "model"), "holds no tokenizer.model");
  write_file(d / "model/tokenizer.model", model_bytes(tiny_pieces()));
  EXPECT_EQ(Tokenizer::load(d / "model")->n_vocab(), 272);
  EXPECT_THAT_ERROR(Tokenizer::load(d / "missing"), "does not exist");
}

TEST(SpmBpe, MistralV1Facts) {
  const std::string v1 = kVocabData + "/mistral-tokenizer.v1.model";
  if (!std::filesystem::exists(v1))
    GTEST_SKIP() << "the v1 Mistral tokenizer is not in ../shared/data";
  auto t = Tokenizer::load(v1);
  EXPECT_EQ(t->encode(" Hello", kNoBos), (Ids{28705, 22557}));
  EXPECT_EQ(t->encode(" ", kNoBos), (Ids{259}));
  const Ids digits = t->encode("12345", kNoBos);
  ASSERT_EQ(digits.size(), 6u);
  EXPECT_EQ(t->piece(digits[0]), "\xE2\x96\x81");
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(t->piece(digits[i]), std::to_string(i));
  const Ids anb = t->encode("a\nb", kNoBos);
  ASSERT_EQ(anb.size(), 3u);
  EXPECT_EQ(t->piece(anb[0]),
            "\xE2\x96\x81"
            "a");
  EXPECT_EQ(anb[1], 13);
  EXPECT_EQ(t->piece(anb[2]), "b");
}

}  // namespace
}  // namespace smoe
