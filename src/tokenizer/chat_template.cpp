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

// Checks the role order; returns the index of the first turn after an optional system message.
size_t check_roles(const std::vector<ChatMessage>& messages) {
  const size_t first = !messages.empty() && messages[0].role == "system" ? 1 : 0;
  if (first == messages.size()) fail("chat: the conversation has no user message");
  for (size_t i = first; i < messages.size(); ++i) {
    const std::string& want = (i - first) % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != want)
      fail(
          "chat: message {} has role '{}' but '{}' was expected (after an optional system "
          "message, turns alternate user, assistant, user, ...)",
          i + 1, messages[i].role, want);
  }
  return first;
}

// Raw: a model without a template never learned turns, so only the last user message is
// completed, as a plain prompt (after the system message and a blank line, when there is one).
std::vector<int32_t> encode_raw(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                size_t first) {
  std::string text = first ? messages[0].content + "\n\n" : "";
  for (size_t i = messages.size(); i-- > first;)
    if (messages[i].role == "user") {
      text += messages[i].content;
      break;
    }
  return tok.encode(
      text, {.add_bos = tok.add_bos_by_default() && tok.bos_id() >= 0, .parse_special = false});
}

std::vector<int32_t> encode_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  std::string text;
  for (const ChatMessage& m : messages)
    text += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  text += "<|im_start|>assistant\n";
  return tok.encode(
      text, {.add_bos = tok.add_bos_by_default() && tok.bos_id() >= 0, .parse_special = true});
}

}  // namespace

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::MistralInstruct:
      return "Mistral Instruct";
    case ChatFormat::ChatML:
      return "ChatML";
    default:
      return "raw turns";
  }
}

ChatTemplate chat_template_for(const std::string& t, const Tokenizer& tok) {
  if (t.find("[INST]") != std::string::npos)
    return {ChatFormat::MistralInstruct, "the model's chat template"};
  if (t.find("<|im_start|>") != std::string::npos)
    return {ChatFormat::ChatML, "the model's chat template"};
  if (!t.empty())
    return {ChatFormat::Raw, "the model's chat template is not one smoe knows ([INST] or ChatML)"};
  if (control_id(tok, "[INST]") >= 0)
    return {ChatFormat::MistralInstruct, "the tokenizer's [INST] control piece (no template)"};
  return {ChatFormat::Raw, "the model carries no chat template"};
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 ChatFormat format) {
  const size_t first = check_roles(messages);
  if (format == ChatFormat::Raw) return encode_raw(tok, messages, first);
  if (format == ChatFormat::ChatML) return encode_chatml(tok, messages);
  const std::string system = first ? messages[0].content : std::string();
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
