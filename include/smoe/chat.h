// Mistral / Mixtral Instruct conversations as token ids, encoded turn by turn as the reference
// request encoder does:
//   <s>[INST] user [/INST] answer</s>[INST] user [/INST]
// With the v1 tokenizer "[INST]" is plain text; with tokenizers that have it as a control piece
// (v3) it is that piece's id. A system message is prepended (system + "\n\n" + user) to the first
// user turn with v1, to the last one with v3 (as the reference does); v3 also drops trailing spaces
// of assistant answers.
#pragma once

#include <string>
#include <vector>

#include "smoe/tokenizer.h"

namespace smoe {

struct ChatMessage {
  std::string role;  // "system" (first only), "user", "assistant"
  std::string content;
};

// Throws smoe::Error on a wrong role order (the conversation must alternate user / assistant,
// starting with a user turn after an optional system message).
std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages);

}  // namespace smoe
