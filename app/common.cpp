#include "common.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace smoe::app {

void ModelFlags::add(CLI::App* cmd, bool model_required) {
  auto* opt = cmd->add_option("-m,--model", model,
                              "model: a .gguf file, a Hugging Face or Mistral folder, or a "
                              "llama2.c .bin checkpoint");
  if (model_required) opt->required();
  cmd->add_option("--tokenizer", tokenizer,
                  "tokenizer file (tokenizer.model, tokenizer.json, llama2.c tokenizer.bin) "
                  "overriding the model's own");
  cmd->add_flag("--no-mmap", no_mmap, "read the weights into memory instead of mapping the file");
  cmd->add_flag("--mlock", mlock, "lock the weights in RAM so they are never paged out");
  cmd->add_flag("--no-repack", no_repack,
                "with --no-mmap, keep the file's weight layout instead of the one this CPU's "
                "kernels read fastest");
  cmd->add_option("--mem-budget", mem_budget,
                  "memory for the weights (e.g. 14G): when the model is larger, keep what every "
                  "token uses resident and cache whole experts in the rest, read from the file "
                  "as tokens need them");
  cmd->add_option("--expert-evict", eviction,
                  "with --mem-budget, which cached expert to replace: lru (least recently used) "
                  "or lfu (least often used)")
      ->check(CLI::IsMember({"lru", "lfu"}));
  cmd->add_flag("--no-prefetch", no_prefetch,
                "with --mem-budget, do not read the next layer's likely experts ahead");
}

ModelOptions ModelFlags::options() const {
  ModelOptions o;
  o.path = model;
  o.tokenizer_path = tokenizer;
  o.use_mmap = !no_mmap;
  o.mlock = mlock;
  o.repack = !no_repack;
  if (!mem_budget.empty()) {
    o.mem_budget = parse_size(mem_budget);
    if (o.mem_budget == 0) throw UsageError("--mem-budget must be larger than 0");
  }
  o.expert_eviction = eviction == "lfu" ? ExpertEviction::Lfu : ExpertEviction::Lru;
  o.expert_prefetch = !no_prefetch;
  // Reading weights into memory can take a while: a bar on a terminal, plain lines otherwise
  // (one per GiB and one at the end).
  if (no_mmap) {
    const bool tty = isatty(fileno(stderr));
    o.progress = [tty, start = std::chrono::steady_clock::now()](uint64_t done, uint64_t total) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!tty) {
        if (done == total || done % (uint64_t{1} << 30) < (uint64_t{64} << 20))
          std::fprintf(stderr, "loading: %s / %s in %.1fs\n", human_bytes(done).c_str(),
                       human_bytes(total).c_str(), s);
        return;
      }
      const double eta =
          done ? s * static_cast<double>(total - done) / static_cast<double>(done) : 0;
      const int filled = total ? static_cast<int>(30 * done / total) : 30;
      std::fprintf(stderr, "\rloading [%s%s] %s / %s, ETA %.0fs   ",
                   std::string(filled, '#').c_str(), std::string(30 - filled, '.').c_str(),
                   human_bytes(done).c_str(), human_bytes(total).c_str(), eta);
      if (done == total) std::fputc('\n', stderr);
    };
  }
  return o;
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string tok;
  auto flush = [&] {
    if (tok.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || v < 0 || v > INT32_MAX)
      throw UsageError("'" + tok + "' is not a token id (expected non-negative integers)");
    ids.push_back(static_cast<int32_t>(v));
    tok.clear();
  };
  for (char ch : text) {
    if (ch == ' ' || ch == ',' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '[' || ch == ']')
      flush();
    else
      tok += ch;
  }
  flush();
  return ids;
}

CLI::Validator is_number() {
  return CLI::Validator(
      [](std::string& s) {
        char* end = nullptr;
        errno = 0;
        std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && end == s.c_str() + s.size() && errno == 0;
        return ok ? std::string() : "'" + s + "' is not a number";
      },
      "NUMBER");
}

std::string read_text_file(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  if (std::filesystem::is_directory(path))
    throw UsageError("'" + path + "' is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  ss << in.rdbuf();
  return ss.str();
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1000000000LL)
    std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(n) / 1e9);
  else if (n >= 1000000LL)
    std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  else if (n >= 1000LL)
    std::snprintf(buf, sizeof buf, "%.2fK", static_cast<double>(n) / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  std::string unit = text.substr(used);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::pair<const char*, int> units[] = {
      {"", 0},     {"B", 0},  {"K", 10},  {"KB", 10},  {"KIB", 10}, {"M", 20},  {"MB", 20},
      {"MIB", 20}, {"G", 30}, {"GB", 30}, {"GIB", 30}, {"T", 40},   {"TB", 40}, {"TIB", 40}};
  for (const auto& [name, shift] : units)
    if (unit == name && v >= 0 && used > 0 && std::isfinite(v))
      return static_cast<uint64_t>(v * static_cast<double>(uint64_t{1} << shift));
  throw UsageError("'" + text + "' is not a size (examples: 12G, 800M, 1.5GiB, 123456)");
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  const double d = static_cast<double>(n);
  if (n >= (1ULL << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", d / (1ULL << 30));
  else if (n >= (1ULL << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", d / (1ULL << 20));
  else if (n >= (1ULL << 10))
    std::snprintf(buf, sizeof buf, "%.2f KiB", d / (1ULL << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.write(reinterpret_cast<const char*>(magic), 8);
  const uint16_t hl = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(hl & 0xff));
  out.put(static_cast<char>(hl >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * 4));
  if (!out) throw std::runtime_error("failed writing '" + path + "'");
}

// Where the built-in demo model lives: beside the sources, or beside an installed binary.
std::string demo_model_path() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& p : {fs::path(SMOE_DEMO_MODEL), exe.parent_path() / "../models/demo.gguf",
                            exe.parent_path() / "../share/smoe/demo.gguf"})
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  throw std::runtime_error("no model given (-m MODEL) and the built-in demo model " +
                           std::string(SMOE_DEMO_MODEL) + " is missing");
}

std::vector<int32_t> text_file_tokens(const Model& m, const std::string& file) {
  auto tok = m.tokenizer();
  if (!tok) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  const std::string text = read_text_file(file);
  if (text.empty()) throw UsageError("'" + file + "' is empty: there is no text to measure");
  return tok->encode(text, {.add_bos = tok->add_bos_by_default()});
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
}

}  // namespace smoe::app
