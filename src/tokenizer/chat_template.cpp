#include "core/error.h"
#include "smoe/chat.h"

namespace smoe {
namespace {

// The id of a control piece spelled `text`, or -1.
int32_t control_id(const Tokenizer& tok, const std::string& text) {
  for (int32_t i = 0; i < tok.n_vocab() && i < 1024; ++i)
    if (tok.type(i) == PieceType::Control && tok.piece(i) == text) return i;
  return -1;
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    first = 1;
  }
  if (first == messages.size()) fail("chat: the conversation has no user message");
  for (size_t i = first; i < messages.size(); ++i) {
    const std::string& want = (i - first) % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != want)
      fail(
          "chat: message {} has role '{}' but '{}' was expected (after an optional system "
          "message, turns alternate user, assistant, user, ...)",
          i + 1, messages[i].role, want);
  }
  const int32_t inst = control_id(tok, "[INST]"), end_inst = control_id(tok, "[/INST]");
  const bool control = inst >= 0 && end_inst >= 0;
  // The reference encoder puts the system prompt before the first user turn with the v1
  // tokenizer, and before the last one with the control-token (v2 / v3) tokenizers.
  size_t system_turn = first;
  if (control)
    for (size_t i = first; i < messages.size(); ++i)
      if (messages[i].role == "user") system_turn = i;
  const EncodeOptions plain{.add_bos = false, .parse_special = false};
  std::vector<int32_t> out;
  if (tok.bos_id() >= 0) out.push_back(tok.bos_id());
  for (size_t i = first; i < messages.size(); ++i) {
    std::string content = messages[i].content;
    if (messages[i].role == "assistant") {
      // v2 / v3 drop trailing spaces of answers; v1 keeps them.
      if (control)
        while (!content.empty() && content.back() == ' ') content.pop_back();
      append(out, tok.encode(content, plain));
      if (tok.eos_id() >= 0) out.push_back(tok.eos_id());
      continue;
    }
    if (i == system_turn && !system.empty()) content = system + "\n\n" + content;
    if (control) {
      out.push_back(inst);
      append(out, tok.encode(content, plain));
      out.push_back(end_inst);
    } else {
      append(out, tok.encode("[INST] " + content + " [/INST]", plain));
    }
  }
  return out;
}

}  // namespace smoe
