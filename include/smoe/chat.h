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

// How a model's turns become one prompt.
enum class ChatFormat {
  Raw,              // no template: the last user message alone, as a plain prompt
  MistralInstruct,  // <s>[INST] user [/INST] answer</s>[INST] user [/INST]
  ChatML,           // <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n
};

struct ChatTemplate {
  ChatFormat format = ChatFormat::Raw;
  std::string why;  // what decided it, for a notice ("the file's chat template", ...)
};

// The format a model's chat template asks for: its template text when the file has one
// (recognised by its markers: [INST], <|im_start|>); without one, Mistral Instruct when the
// tokenizer has [INST] as a control piece (the v3 tokenizers of the Instruct models), else Raw.
// An unrecognised template gives Raw, saying so in `why`.
ChatTemplate chat_template_for(const std::string& template_text, const Tokenizer& tok);

const char* chat_format_name(ChatFormat f);

// Throws smoe::Error on a wrong role order (the conversation must alternate user / assistant,
// starting with a user turn after an optional system message).
std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 ChatFormat format = ChatFormat::MistralInstruct);

}  // namespace smoe
