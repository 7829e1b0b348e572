#include "openai_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace smoe::server {
namespace {

using nlohmann::json;

ApiError bad(const std::string& param, const std::string& message) {
  return ApiError(400, message, param);
}

// Present and not null.
const json* field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& j, const char* key, double lo, double hi) {
  const json& v = *field(j, key);
  if (!v.is_number())
    throw bad(key, fmt::format("'{}' must be a number, got {}", key, v.type_name()));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
  return x;
}

int64_t integer(const json& j, const char* key, int64_t lo, int64_t hi) {
  const json& v = *field(j, key);
  if (!v.is_number_integer())
    throw bad(key, fmt::format("'{}' must be an integer, got {}", key,
                               v.is_number() ? "a fractional number" : v.type_name()));
  const int64_t x =
      v.is_number_unsigned()
          ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), uint64_t{INT64_MAX}))
          : v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
  return x;
}

bool boolean(const json& j, const char* key) {
  const json& v = *field(j, key);
  if (!v.is_boolean())
    throw bad(key, fmt::format("'{}' must be true or false, got {}", key, v.type_name()));
  return v.get<bool>();
}

std::string string_of(const json& j, const char* key) {
  const json& v = *field(j, key);
  if (!v.is_string())
    throw bad(key, fmt::format("'{}' must be a string, got {}", key, v.type_name()));
  return v.get<std::string>();
}

std::vector<std::string> stop_strings(const json& j) {
  const json& v = *field(j, "stop");
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) throw bad("stop", "'stop' must be a string or a list of strings");
  if (v.size() > 16)
    throw bad("stop", fmt::format("'stop' holds {} strings; at most 16", v.size()));
  std::vector<std::string> out;
  for (const json& s : v) {
    if (!s.is_string()) throw bad("stop", "'stop' must be a string or a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<std::pair<int32_t, float>> logit_bias(const json& j) {
  const json& v = *field(j, "logit_bias");
  if (!v.is_object())
    throw bad("logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
  std::vector<std::pair<int32_t, float>> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(it.key(), &used);
      if (used != it.key().size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0 || id > INT32_MAX)
      throw bad("logit_bias", fmt::format("'logit_bias' key '{}' is not a token id", it.key()));
    if (!it->is_number() || std::abs(it->get<double>()) > 100)
      throw bad("logit_bias",
                fmt::format("'logit_bias' value of token {} must be a number in -100..100", id));
    out.push_back({static_cast<int32_t>(id), it->get<float>()});
  }
  return out;
}

// What smoe does not do is refused rather than ignored: an answer that silently skipped a tool
// schema or a JSON format would look right and be wrong.
void refuse_unsupported(const json& j) {
  for (const char* k : {"tools", "functions", "tool_choice", "function_call"})
    if (field(j, k) && !(std::string(k) == "tool_choice" && (*field(j, k)) == "none"))
      throw bad(k, fmt::format("'{}' is not supported: smoe does not call tools", k));
  if (const json* rf = field(j, "response_format")) {
    if (!rf->is_object() || rf->value("type", "") != "text")
      throw bad("response_format",
                "'response_format' other than {\"type\": \"text\"} is not supported");
  }
  if (field(j, "suffix")) throw bad("suffix", "'suffix' (insertion) is not supported");
  if (const json* b = field(j, "best_of"); b && (!b->is_number_integer() || b->get<int>() != 1))
    throw bad("best_of", "'best_of' other than 1 is not supported; use 'n'");
}

// The fields both endpoints share.
Options parse_options(const json& j, const GenerateParams& defaults, bool chat) {
  refuse_unsupported(j);
  Options o;
  o.gen = defaults;
  SamplingParams& s = o.gen.sampling;
  if (field(j, "model")) o.model = string_of(j, "model");
  for (const char* k : {"max_tokens", "max_completion_tokens"})
    if (field(j, k)) {
      o.gen.n_predict = static_cast<int>(integer(j, k, 1, 1 << 24));
      o.max_tokens_given = true;
    }
  if (field(j, "temperature")) s.temperature = static_cast<float>(number(j, "temperature", 0, 2));
  if (field(j, "top_p")) s.top_p = static_cast<float>(number(j, "top_p", 0, 1));
  if (field(j, "top_k")) s.top_k = static_cast<int>(integer(j, "top_k", 0, 1 << 24));
  if (field(j, "min_p")) s.min_p = static_cast<float>(number(j, "min_p", 0, 1));
  if (field(j, "repeat_penalty"))
    s.repeat_penalty = static_cast<float>(number(j, "repeat_penalty", 0.01, 100));
  if (field(j, "repeat_last_n"))
    s.repeat_last_n = static_cast<int>(integer(j, "repeat_last_n", -1, 1 << 24));
  if (field(j, "presence_penalty"))
    s.presence_penalty = static_cast<float>(number(j, "presence_penalty", -2, 2));
  if (field(j, "frequency_penalty"))
    s.frequency_penalty = static_cast<float>(number(j, "frequency_penalty", -2, 2));
  if (field(j, "seed")) s.seed = static_cast<uint64_t>(integer(j, "seed", INT64_MIN, INT64_MAX));
  if (field(j, "logit_bias")) s.logit_bias = logit_bias(j);
  if (field(j, "stop")) o.gen.stop = stop_strings(j);
  if (field(j, "n")) o.n = static_cast<int>(integer(j, "n", 1, 128));
  if (field(j, "stream")) o.stream = boolean(j, "stream");
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) throw bad("stream_options", "'stream_options' must be an object");
    if (field(*so, "include_usage")) o.include_usage = boolean(*so, "include_usage");
  }
  if (field(j, "ignore_eos")) o.gen.stop_at_eos = !boolean(j, "ignore_eos");
  if (field(j, "user")) string_of(j, "user");  // accepted, checked, not used
  if (chat) {
    if (field(j, "logprobs")) o.want_logprobs = boolean(j, "logprobs");
    if (field(j, "top_logprobs")) {
      o.gen.logprobs = static_cast<int>(integer(j, "top_logprobs", 0, 20));
      if (!o.want_logprobs)
        throw bad("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    }
  } else {
    if (field(j, "logprobs")) {
      o.gen.logprobs = static_cast<int>(integer(j, "logprobs", 0, 5));
      o.want_logprobs = true;
    }
    if (field(j, "echo")) o.echo = boolean(j, "echo");
  }
  return o;
}

// A message's text: a string, or a list of text parts.
std::string content_of(const json& m, size_t i) {
  const std::string where = fmt::format("messages[{}].content", i);
  const json* c = field(m, "content");
  if (!c) return {};
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array()) throw bad(where, "'" + where + "' must be a string or a list of text parts");
  std::string text;
  for (const json& part : *c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string())
      throw bad(where, "'" + where + "' may hold only text parts ({\"type\": \"text\", ...})");
    text += part["text"].get<std::string>();
  }
  return text;
}

// OpenAI's conversations are freer than a chat template: system (or developer) messages are
// joined into one leading system message, consecutive messages of one role into one turn.
std::vector<ChatMessage> conversation(const json& j) {
  const json* ms = field(j, "messages");
  if (!ms) throw bad("messages", "'messages' is required");
  if (!ms->is_array() || ms->empty())
    throw bad("messages", "'messages' must be a non-empty list of messages");
  std::string system;
  std::vector<ChatMessage> turns;
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    if (!m.is_object()) throw bad("messages", fmt::format("messages[{}] must be an object", i));
    const json* r = field(m, "role");
    if (!r || !r->is_string())
      throw bad(fmt::format("messages[{}].role", i),
                fmt::format("messages[{}] needs a 'role' string", i));
    std::string role = r->get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant")
      throw bad(fmt::format("messages[{}].role", i),
                fmt::format("unknown role '{}' in messages[{}] (roles: system, developer, user, "
                            "assistant)",
                            role, i));
    const std::string text = content_of(m, i);
    if (role == "system") {
      system += (system.empty() ? "" : "\n\n") + text;
    } else if (!turns.empty() && turns.back().role == role) {
      turns.back().content += "\n\n" + text;
    } else {
      turns.push_back({role, text});
    }
  }
  if (turns.empty() || turns.front().role != "user")
    throw bad("messages", "the conversation must have a user message before any assistant one");
  if (turns.back().role != "user") throw bad("messages", "the last message must be the user's");
  if (!system.empty()) turns.insert(turns.begin(), {"system", system});
  return turns;
}

// A prompt: a string, a list of token ids, or a list of either (several prompts).
void prompts_of(const json& p, const Tokenizer& tok, CompletionBody& out) {
  const auto ids = [&](const json& a) {
    std::vector<int32_t> v;
    for (const json& x : a) {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= tok.n_vocab())
        throw bad("prompt",
                  fmt::format("prompt token ids must be integers in 0..{}", tok.n_vocab() - 1));
      v.push_back(x.get<int32_t>());
    }
    return v;
  };
  const auto add_text = [&](const std::string& s) {
    out.prompt_texts.push_back(s);
    out.prompts.push_back(tok.encode(
        s, {.add_bos = tok.add_bos_by_default() && tok.bos_id() >= 0, .parse_special = false}));
  };
  const auto add_ids = [&](const json& a) {
    out.prompts.push_back(ids(a));
    out.prompt_texts.push_back(tok.decode(out.prompts.back()));
  };
  if (p.is_string()) return add_text(p.get<std::string>());
  if (!p.is_array() || p.empty())
    throw bad("prompt", "'prompt' must be a string, a list of strings, or token ids");
  if (p[0].is_number()) return add_ids(p);
  for (const json& x : p) {
    if (x.is_string())
      add_text(x.get<std::string>());
    else if (x.is_array() && !x.empty())
      add_ids(x);
    else
      throw bad("prompt", "'prompt' must be a string, a list of strings, or token ids");
  }
}

std::string token_text(const Tokenizer& tok, int32_t id) {
  return tok.token_bytes(id);
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

ApiError::ApiError(int s, std::string message, std::string p, std::string t, std::string c)
    : std::runtime_error(std::move(message)),
      status(s),
      param(std::move(p)),
      type(t.empty() ? (s >= 500 ? "server_error" : "invalid_request_error") : std::move(t)),
      code(std::move(c)) {}

json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.what()},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

json parse_json(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded())
    throw ApiError(400, "the request body is not valid JSON", {}, {}, "invalid_json");
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

ChatBody parse_chat(const json& j, const GenerateParams& defaults) {
  ChatBody b;
  b.messages = conversation(j);
  b.opt = parse_options(j, defaults, true);
  return b;
}

CompletionBody parse_completion(const json& j, const GenerateParams& defaults,
                                const Tokenizer& tok) {
  CompletionBody b;
  const json* p = field(j, "prompt");
  if (!p) throw bad("prompt", "'prompt' is required");
  prompts_of(*p, tok, b);
  b.opt = parse_options(j, defaults, false);
  if (!b.opt.max_tokens_given) b.opt.gen.n_predict = 16;  // OpenAI's default for completions
  return b;
}

std::string finish_reason_of(const std::string& r) {
  return r == "length" ? "length" : "stop";
}

json Usage::json() const {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

json chat_logprobs(const std::vector<Piece>& pieces, const Tokenizer& tok) {
  json content = json::array();
  for (const Piece& p : pieces) {
    if (p.id < 0) continue;
    const std::string t = token_text(tok, p.id);
    json top = json::array();
    for (const TokenLogprob& a : p.top) {
      const std::string at = token_text(tok, a.id);
      top.push_back({{"token", at}, {"logprob", a.logprob}, {"bytes", bytes_of(at)}});
    }
    content.push_back(
        {{"token", t}, {"logprob", p.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json completion_logprobs(const std::vector<Piece>& pieces, const Tokenizer& tok,
                         size_t text_offset) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const Piece& p : pieces) {
    if (p.id < 0) continue;
    const std::string t = token_text(tok, p.id);
    tokens.push_back(t);
    lps.push_back(p.logprob);
    json top = json::object();
    for (const TokenLogprob& a : p.top) top[token_text(tok, a.id)] = a.logprob;
    tops.push_back(top);
    offs.push_back(text_offset);
    text_offset += t.size();
  }
  return {
      {"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json chat_response(const std::string& id, int64_t created, const std::string& model,
                   const std::vector<ChoiceResult>& choices, const Usage& usage, bool logprobs,
                   const Tokenizer& tok) {
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i)
    cs.push_back({{"index", i},
                  {"message", {{"role", "assistant"}, {"content", choices[i].text}}},
                  {"logprobs", logprobs ? chat_logprobs(choices[i].tokens, tok) : json(nullptr)},
                  {"finish_reason", finish_reason_of(choices[i].finish_reason)}});
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", cs},
          {"usage", usage.json()},
          {"system_fingerprint", "smoe"}};
}

json completion_response(const std::string& id, int64_t created, const std::string& model,
                         const std::vector<ChoiceResult>& choices, const Usage& usage,
                         bool logprobs, const Tokenizer& tok) {
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i)
    cs.push_back(
        {{"index", i},
         {"text", choices[i].text},
         {"logprobs", logprobs ? completion_logprobs(choices[i].tokens, tok, 0) : json(nullptr)},
         {"finish_reason", finish_reason_of(choices[i].finish_reason)}});
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", cs},
          {"usage", usage.json()},
          {"system_fingerprint", "smoe"}};
}

json chat_chunk(const std::string& id, int64_t created, const std::string& model, int index,
                const json& delta, const json& logprobs, const std::string& finish_reason) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"system_fingerprint", "smoe"},
          {"choices",
           {{{"index", index},
             {"delta", delta},
             {"logprobs", logprobs},
             {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}}}}};
}

json completion_chunk(const std::string& id, int64_t created, const std::string& model, int index,
                      const std::string& text, const json& logprobs,
                      const std::string& finish_reason) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"system_fingerprint", "smoe"},
          {"choices",
           {{{"index", index},
             {"text", text},
             {"logprobs", logprobs},
             {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}}}}};
}

json usage_chunk(const std::string& id, int64_t created, const std::string& model,
                 const char* object, const Usage& usage) {
  return {{"id", id},
          {"object", object},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage.json()},
          {"system_fingerprint", "smoe"}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace smoe::server
