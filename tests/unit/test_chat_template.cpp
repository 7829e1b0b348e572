// The Instruct template reproduces the reference encoder's ids on a real conversation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "smoe/chat.h"

namespace smoe {
namespace {

const std::string kData = std::string(SMOE_SHARED_DATA_DIR);

nlohmann::json read_json(const std::string& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

void check_golden(const std::string& model, const std::string& tokens) {
  const std::string dir = kData + "/mistral-chat-golden/";
  if (!std::filesystem::exists(kData + "/" + model) ||
      !std::filesystem::exists(dir + "sample.json"))
    GTEST_SKIP() << "the real Mistral tokenizer and chat golden data are not in ../shared/data";
  auto tok = Tokenizer::load(kData + "/" + model);
  std::vector<ChatMessage> msgs;
  const nlohmann::json sample = read_json(dir + "sample.json");
  for (const auto& m : sample["messages"])
    msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  const auto want = read_json(dir + tokens)["tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(encode_chat(*tok, msgs), want);
}

TEST(ChatTemplate, ReproducesTheReferenceV1) {
  check_golden("mistral-tokenizer.v1.model", "tokens_v1.json");
}
TEST(ChatTemplate, ReproducesTheReferenceV3) {
  check_golden("mistral-tokenizer.v3.model", "tokens_v3.json");
}

TEST(ChatTemplate, SystemPromptGoesBeforeTheFirstUserTurn) {
  if (!std::filesystem::exists(kData + "/mistral-tokenizer.v1.model"))
    GTEST_SKIP() << "the real Mistral tokenizer is not in ../shared/data";
  auto tok = Tokenizer::load(kData + "/mistral-tokenizer.v1.model");
  const auto with = encode_chat(*tok, {{"system", "Be brief."}, {"user", "Hi"}});
  const auto manual = encode_chat(*tok, {{"user", "Be brief.\n\nHi"}});
  EXPECT_EQ(with, manual);
  EXPECT_EQ(tok->decode(with), "[INST] Be brief.\n\nHi [/INST]");
}

TEST(ChatTemplate, V3PutsTheSystemPromptBeforeTheLastUserTurn) {
  if (!std::filesystem::exists(kData + "/mistral-tokenizer.v3.model"))
    GTEST_SKIP() << "the v3 Mistral tokenizer is not in ../shared/data";
  auto tok = Tokenizer::load(kData + "/mistral-tokenizer.v3.model");
  const auto with = encode_chat(
      *tok, {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello.  "}, {"user", "Bye"}});
  const auto manual =
      encode_chat(*tok, {{"user", "Hi"}, {"assistant", "Hello."}, {"user", "Be brief.\n\nBye"}});
  EXPECT_EQ(with, manual);
  EXPECT_EQ(with[1], 3);  // [INST]
  EXPECT_EQ(tok->decode(with, {.render_special = true}),
            "<s>[INST] Hi[/INST] Hello.</s>[INST] Be brief.\n\nBye[/INST]");
}

TEST(ChatTemplate, V1KeepsTrailingSpacesOfAnswers) {
  if (!std::filesystem::exists(kData + "/mistral-tokenizer.v1.model"))
    GTEST_SKIP() << "the real Mistral tokenizer is not in ../shared/data";
  auto tok = Tokenizer::load(kData + "/mistral-tokenizer.v1.model");
  const auto ids = encode_chat(*tok, {{"user", "Hi"}, {"assistant", "Hello. "}, {"user", "Bye"}});
  EXPECT_EQ(tok->decode(ids), "[INST] Hi [/INST] Hello.  [INST] Bye [/INST]");  // space + ▁[INST]
  EXPECT_NE(ids, encode_chat(*tok, {{"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}}));
}

TEST(ChatTemplate, WrongRoleOrderIsAClearError) {
  if (!std::filesystem::exists(kData + "/mistral-tokenizer.v1.model"))
    GTEST_SKIP() << "the real Mistral tokenizer is not in ../shared/data";
  auto tok = Tokenizer::load(kData + "/mistral-tokenizer.v1.model");
  EXPECT_THROW(encode_chat(*tok, {{"assistant", "x"}}), Error);
  EXPECT_THROW(encode_chat(*tok, {{"user", "a"}, {"user", "b"}}), Error);
  EXPECT_THROW(encode_chat(*tok, {{"system", "s"}}), Error);
  EXPECT_THROW(encode_chat(*tok, {{"user", "a"}, {"system", "s"}}), Error);
  try {
    encode_chat(*tok, {{"user", "a"}, {"robot", "b"}});
    ADD_FAILURE() << "role 'robot' was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'robot'"), std::string::npos);
  }
}

}  // namespace
}  // namespace smoe
