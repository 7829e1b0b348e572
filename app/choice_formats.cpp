#include "choice_formats.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common.h"

namespace smoe::app {
namespace {

[[noreturn]] void bad(const std::string& path, size_t line, const std::string& why) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + why);
}

std::vector<int32_t> tokens(const Tokenizer& tok, const std::string& text) {
  return tok.encode(text, {.add_bos = tok.add_bos_by_default()});
}

int64_t common_prefix(const std::vector<std::vector<int32_t>>& c) {
  size_t n = c[0].size();
  for (const auto& s : c) {
    size_t i = 0;
    while (i < std::min(n, s.size()) && s[i] == c[0][i]) ++i;
    n = i;
  }
  return static_cast<int64_t>(n);
}

// Every choice scored from the shared tokens to its end (hellaswag, jsonl).
ChoiceTask after_shared(const Tokenizer& tok, const std::vector<std::string>& texts, int answer) {
  ChoiceTask t;
  for (const std::string& s : texts) t.choices.push_back(tokens(tok, s));
  const int64_t cp = common_prefix(t.choices);
  for (const auto& c : t.choices)
    t.scored.push_back({std::min<int64_t>(cp, static_cast<int64_t>(c.size()) - 1),
                        static_cast<int64_t>(c.size())});
  t.answer = answer;
  return t;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> lines;
  std::string text = read_text_file(path), line;
  for (size_t at = 0; at <= text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    line = text.substr(at, nl - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    at = nl + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<ChoiceTask> hellaswag(const std::string& path, const Tokenizer& tok) {
  const std::vector<std::string> l = lines_of(path);
  if (l.size() % 6 != 0)
    bad(path, l.size(),
        "a HellaSwag file has 6 lines per task (context, answer, 4 endings); " +
            std::to_string(l.size()) + " lines are not whole tasks");
  std::vector<ChoiceTask> out;
  for (size_t i = 0; i < l.size(); i += 6) {
    const std::string& g = l[i + 1];
    if (g.size() != 1 || g[0] < '0' || g[0] > '3') bad(path, i + 2, "the answer must be 0 to 3");
    std::vector<std::string> texts;
    for (int j = 0; j < 4; ++j) texts.push_back(l[i] + " " + l[i + 2 + j]);
    out.push_back(after_shared(tok, texts, g[0] - '0'));
  }
  return out;
}

// The five fields of a WinoGrande line; the sentence may be quoted (and hold commas).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> f(1);
  bool quoted = false;
  for (char c : line) {
    if (c == '"')
      quoted = !quoted;
    else if (c == ',' && !quoted && f.size() < 5)
      f.emplace_back();
    else
      f.back() += c;
  }
  return f;
}

std::vector<ChoiceTask> winogrande(const std::string& path, const Tokenizer& tok) {
  std::vector<ChoiceTask> out;
  const std::vector<std::string> l = lines_of(path);
  for (size_t i = 0; i < l.size(); ++i) {
    const std::vector<std::string> f = csv_fields(l[i]);
    if (f.size() != 5) bad(path, i + 1, "expected index,sentence,option1,option2,answer");
    if (i == 0 && f[4] == "answer") continue;  // a header line
    const size_t blank = f[1].find('_');
    if (blank == std::string::npos) bad(path, i + 1, "the sentence has no '_' for the option");
    if (f[4] != "1" && f[4] != "2") bad(path, i + 1, "the answer must be 1 or 2");
    const std::string first = f[1].substr(0, blank), second = f[1].substr(blank + 1);
    ChoiceTask t;
    std::vector<int64_t> base;
    for (const std::string& option : {f[2], f[3]}) {
      t.choices.push_back(tokens(tok, first + option + second));
      base.push_back(static_cast<int64_t>(tokens(tok, first + option).size()));
    }
    const int64_t cp = common_prefix(t.choices);
    const bool after_option = static_cast<int64_t>(t.choices[0].size()) - cp > 3 &&
                              static_cast<int64_t>(t.choices[1].size()) - cp > 3;
    for (int c = 0; c < 2; ++c) {
      const int64_t size = static_cast<int64_t>(t.choices[c].size());
      const int64_t from = std::max<int64_t>(1, after_option ? base[c] : cp);
      const int64_t to = size - (size - from > 1 ? 1 : 0);
      if (from >= to) bad(path, i + 1, "an option leaves no tokens to score");
      t.scored.push_back({from, to});
    }
    t.answer = f[4][0] - '1';
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ChoiceTask> jsonl(const std::string& path, const Tokenizer& tok) {
  std::vector<ChoiceTask> out;
  const std::vector<std::string> l = lines_of(path);
  for (size_t i = 0; i < l.size(); ++i) {
    if (l[i].find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l[i]);
    } catch (const nlohmann::json::exception& e) {
      bad(path, i + 1, std::string("not JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("context") || !j["context"].is_string() ||
        !j.contains("choices") || !j["choices"].is_array() || j["choices"].size() < 2 ||
        !j.contains("answer") || !j["answer"].is_number_integer())
      bad(path, i + 1, R"(expected {"context": "...", "choices": ["...", ...], "answer": i})");
    std::vector<std::string> texts;
    for (const auto& c : j["choices"]) {
      if (!c.is_string()) bad(path, i + 1, "every choice must be a string");
      texts.push_back(j["context"].get<std::string>() + c.get<std::string>());
    }
    const int answer = j["answer"].get<int>();
    if (answer < 0 || answer >= static_cast<int>(texts.size()))
      bad(path, i + 1, "the answer is not the index of a choice");
    out.push_back(after_shared(tok, texts, answer));
  }
  return out;
}

// Reads little-endian fields of a binary file, failing with its name and offset.
struct BinaryReader {
  const std::string& path;
  const std::string& bytes;
  size_t at = 0;
  uint32_t u32() {
    if (at + 4 > bytes.size())
      throw std::runtime_error(path + ": ends at byte " + std::to_string(at));
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    at += 4;
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    if (n > bytes.size() - at)
      throw std::runtime_error(path + ": a string of " + std::to_string(n) + " bytes at byte " +
                               std::to_string(at) + " runs past the end");
    at += n;
    return bytes.substr(at - n, n);
  }
  // An answer list: the answers and the index of the first labelled 1 (−1: none).
  std::pair<std::vector<std::string>, int> answers() {
    const uint32_t n = u32();
    if (n > 100) throw std::runtime_error(path + ": " + std::to_string(n) + " answers in a task");
    std::vector<std::string> a;
    for (uint32_t i = 0; i < n; ++i) a.push_back(str());
    int right = -1;
    for (uint32_t i = 0; i < n; ++i)
      if (static_cast<int32_t>(u32()) == 1 && right < 0) right = static_cast<int>(i);
    return {a, right};
  }
};

std::vector<ChoiceTask> binary(const std::string& path, const Tokenizer& tok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BinaryReader r{path, bytes};
  const uint32_t n = r.u32();
  if (n == 0 || n > bytes.size() / 4) throw std::runtime_error(path + ": no tasks");
  std::vector<uint32_t> pos(n);
  for (uint32_t& p : pos) p = r.u32();
  std::vector<ChoiceTask> out;
  for (uint32_t i = 0; i < n; ++i) {
    r.at = pos[i];
    const std::string question = r.str();
    auto [answers, right] = r.answers();
    r.answers();  // the list with several right answers: not a single-answer task
    if (question.empty() || answers.size() < 2 || right < 0)
      throw std::runtime_error(path + ": task " + std::to_string(i + 1) +
                               " has no question, fewer than 2 answers or none labelled right");
    for (std::string& a : answers) a = question + " " + a;
    out.push_back(after_shared(tok, answers, right));
  }
  return out;
}

}  // namespace

ChoiceFormat choice_format(const std::string& name, const std::string& path) {
  if (name == "hellaswag") return ChoiceFormat::HellaSwag;
  if (name == "winogrande") return ChoiceFormat::WinoGrande;
  if (name == "jsonl") return ChoiceFormat::Jsonl;
  if (name == "mc") return ChoiceFormat::Binary;
  if (name != "auto") throw UsageError("unknown task format '" + name + "'");
  const auto ends = [&](const std::string& s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".csv")) return ChoiceFormat::WinoGrande;
  if (ends(".bin")) return ChoiceFormat::Binary;
  if (ends(".jsonl") || ends(".json")) return ChoiceFormat::Jsonl;
  return ChoiceFormat::HellaSwag;
}

const char* choice_format_name(ChoiceFormat f) {
  switch (f) {
    case ChoiceFormat::HellaSwag:
      return "HellaSwag";
    case ChoiceFormat::WinoGrande:
      return "WinoGrande";
    case ChoiceFormat::Binary:
      return "multiple-choice";
    case ChoiceFormat::Jsonl:
      return "multiple-choice";
  }
  return "?";
}

std::vector<ChoiceTask> read_choice_tasks(const std::string& path, ChoiceFormat f,
                                          const Tokenizer& tok) {
  std::vector<ChoiceTask> t = f == ChoiceFormat::HellaSwag    ? hellaswag(path, tok)
                              : f == ChoiceFormat::WinoGrande ? winogrande(path, tok)
                              : f == ChoiceFormat::Binary     ? binary(path, tok)
                                                              : jsonl(path, tok);
  if (t.empty()) throw UsageError("'" + path + "' holds no tasks");
  return t;
}

}  // namespace smoe::app
