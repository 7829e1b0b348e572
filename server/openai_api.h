// OpenAI's API as JSON: request bodies parsed and checked into the engine's terms, and responses,
// stream chunks and errors built in OpenAI's shape.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "channel.h"
#include "smoe/chat.h"
#include "smoe/generate.h"
#include "smoe/tokenizer.h"

namespace smoe::server {

// An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string type = {},
           std::string code = {});
  int status;
  std::string param, type, code;
};
nlohmann::json error_body(const ApiError& e);

// What both endpoints take besides the prompt.
struct Options {
  std::string model;
  GenerateParams gen;  // n_predict (-1: to the end of the context), sampling, stop
  bool max_tokens_given = false;
  bool want_logprobs = false;  // report the chosen tokens' log-probabilities
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: the prompt's text before the answer
};

struct ChatBody {
  std::vector<ChatMessage> messages;
  Options opt;
};

struct CompletionBody {
  std::vector<std::vector<int32_t>> prompts;  // token ids, one list per prompt
  std::vector<std::string> prompt_texts;      // their text (for echo)
  Options opt;
};

// Parse and check; `defaults` holds the server's sampling defaults. Throw ApiError (400) naming
// the field and what was wrong.
nlohmann::json parse_json(const std::string& body);
ChatBody parse_chat(const nlohmann::json& j, const GenerateParams& defaults);
CompletionBody parse_completion(const nlohmann::json& j, const GenerateParams& defaults,
                                const Tokenizer& tok);

// Everything one choice produced, gathered for a whole (not streamed) response.
struct ChoiceResult {
  std::string text;
  std::vector<Piece> tokens;  // with logprobs
  std::string finish_reason;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
};

// The engine's end reasons in OpenAI's words ("stop", "length"; cancelled ends read as "stop").
std::string finish_reason_of(const std::string& engine_reason);

struct Usage {
  int64_t prompt = 0, completion = 0, cached = 0;
  nlohmann::json json() const;
};

// Whole responses.
nlohmann::json chat_response(const std::string& id, int64_t created, const std::string& model,
                             const std::vector<ChoiceResult>& choices, const Usage& usage,
                             bool logprobs, const Tokenizer& tok);
nlohmann::json completion_response(const std::string& id, int64_t created, const std::string& model,
                                   const std::vector<ChoiceResult>& choices, const Usage& usage,
                                   bool logprobs, const Tokenizer& tok);

// Stream chunks. `delta`/`text` chunks carry one piece; the end chunk carries the finish reason.
nlohmann::json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                          int index, const nlohmann::json& delta, const nlohmann::json& logprobs,
                          const std::string& finish_reason);
nlohmann::json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                                int index, const std::string& text, const nlohmann::json& logprobs,
                                const std::string& finish_reason);
nlohmann::json usage_chunk(const std::string& id, int64_t created, const std::string& model,
                           const char* object, const Usage& usage);

// Log-probabilities of pieces: chat's {"content": [...]} and completions' legacy shape.
nlohmann::json chat_logprobs(const std::vector<Piece>& pieces, const Tokenizer& tok);
nlohmann::json completion_logprobs(const std::vector<Piece>& pieces, const Tokenizer& tok,
                                   size_t text_offset);

// One line of text for a JSON body (invalid UTF-8 replaced, never an exception).
std::string dump(const nlohmann::json& j);

}  // namespace smoe::server
