// smoe tokenize / detokenize: see exactly which ids a prompt becomes, and back.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "common.h"

namespace smoe::app {
namespace {

struct TokFlags {
  std::string model;
  std::string prompt;
  bool prompt_given = false;
  std::string ids;
  bool ids_only = false;
  bool no_bos = false;
  bool parse_special = false;
  bool jsonl = false;
  bool render_special = false;
};

// A --jsonl input line: a JSON string, or an array of byte values (text that is not UTF-8).
std::string jsonl_text(const std::string& line, int n) {
  try {
    const auto j = nlohmann::json::parse(line);
    if (j.is_string()) return j.get<std::string>();
    if (j.is_array()) {
      std::string bytes;
      for (const auto& b : j) {
        const int v = b.get<int>();
        if (v < 0 || v > 255) throw std::runtime_error("byte value " + std::to_string(v));
        bytes += static_cast<char>(v);
      }
      return bytes;
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("stdin line " + std::to_string(n) +
                             ": expected a JSON string or an array of byte values (" + e.what() +
                             ")");
  }
  throw std::runtime_error("stdin line " + std::to_string(n) +
                           ": expected a JSON string or an array of byte values");
}

void check_ids(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (id >= tok.n_vocab())
      throw std::runtime_error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                               std::to_string(tok.n_vocab()));
}

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  return Tokenizer::load(path);
}

int run_tokenize(const TokFlags& f) {
  auto tok = load_tokenizer(f.model);
  EncodeOptions eo;
  eo.add_bos = !f.no_bos && tok->add_bos_by_default();
  eo.parse_special = f.parse_special;
  if (f.jsonl) {  // one JSON string per input line → one JSON array of ids per output line
    std::string line;
    for (int n = 1; std::getline(std::cin, line); ++n) {
      if (line.empty()) continue;
      const std::string text = jsonl_text(line, n);
      std::printf("%s\n", nlohmann::json(tok->encode(text, eo)).dump().c_str());
    }
    return 0;
  }
  const std::string text = f.prompt_given ? f.prompt : read_text_file("-");
  const std::vector<int32_t> ids = tok->encode(text, eo);
  if (f.ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return 0;
  }
  for (int32_t id : ids) std::printf("%d\t%s\n", id, tok->piece(id).c_str());
  return 0;
}

int run_detokenize(const TokFlags& f) {
  auto tok = load_tokenizer(f.model);
  DecodeOptions o;
  o.render_special = f.render_special;
  if (f.jsonl) {  // one JSON array of ids per input line → one JSON string per output line
    std::string line;
    for (int n = 1; std::getline(std::cin, line); ++n) {
      if (line.empty()) continue;
      const std::vector<int32_t> ids = parse_ids(line);
      check_ids(*tok, ids);
      std::printf("%s\n", nlohmann::json(tok->decode(ids, o))
                              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                              .c_str());
    }
    return 0;
  }
  const std::vector<int32_t> ids = parse_ids(f.ids.empty() ? read_text_file("-") : f.ids);
  check_ids(*tok, ids);
  const std::string text = tok->decode(ids, o);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::printf("\n");
  return 0;
}

}  // namespace

void add_tokenize_commands(CLI::App& app, Runner& run) {
  auto f = std::make_shared<TokFlags>();
  auto* t = app.add_subcommand("tokenize", "Print the token ids (and pieces) of a text");
  t->add_option("-m,--model", f->model,
                "a .gguf model, a tokenizer.model / tokenizer.json / llama2.c tokenizer.bin, or a "
                "model folder")
      ->required();
  t->add_option("-p,--prompt", f->prompt, "the text (default: read stdin)")
      ->each([f](const std::string&) { f->prompt_given = true; });
  t->add_flag("--ids-only", f->ids_only, "print only the ids, on one line");
  t->add_flag("--no-bos", f->no_bos, "do not start with BOS");
  t->add_flag("--special", f->parse_special, "turn control tokens written in the text into ids");
  t->add_flag("--jsonl", f->jsonl,
              "read JSON strings (or arrays of byte values) line by line, print JSON id arrays");
  t->callback([&run, f] { run = [f] { return run_tokenize(*f); }; });

  auto* d = app.add_subcommand("detokenize", "Print the text of token ids");
  d->add_option("-m,--model", f->model, "model or tokenizer file")->required();
  d->add_option("--ids", f->ids, "ids, e.g. \"1 415 2936\" (default: read stdin)");
  d->add_flag("--special", f->render_special, "show control tokens such as <s>");
  d->add_flag("--jsonl", f->jsonl, "read JSON id arrays line by line, print JSON strings");
  d->callback([&run, f] { run = [f] { return run_detokenize(*f); }; });
}

}  // namespace smoe::app
