// Flags and helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "smoe/engine.h"
#include "smoe/generate.h"

namespace smoe::app {

// A mistake in how smoe was called (a missing or empty argument, flags that do not go
// together): main reports it like a parse error, with exit code 2; other errors exit with 1.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// -m/--model, --tokenizer, --no-mmap, --mlock.
struct ModelFlags {
  std::string model;
  std::string tokenizer;
  bool no_mmap = false;
  bool no_repack = false;
  bool mlock = false;
  std::string mem_budget;        // "", or a size: "12G", "800M", "1.5GiB", "123456"
  std::string eviction = "lru";  // lru | lfu
  bool no_prefetch = false;
  void add(CLI::App* cmd, bool model_required = true);
  ModelOptions options() const;
};

// Checks that a flag's value is a number before its range is checked, so that "--temp abc" says
// "'abc' is not a number" rather than that it is out of range.
CLI::Validator is_number();

// The built-in demo model: beside the sources, or beside an installed binary. Throws when absent.
std::string demo_model_path();

// Parses "1 415 2936" (spaces, commas or newlines between ids). Throws on anything else.
std::vector<int32_t> parse_ids(const std::string& text);

// Reads a whole file ("-" is stdin). Throws with the path on failure, and for a directory.
std::string read_text_file(const std::string& path);

// The tokens of a text file (BOS first where the model adds it); an empty file is a usage error.
std::vector<int32_t> text_file_tokens(const Model& m, const std::string& file);

// "46.70B", "12.9M", "512"
std::string human_count(int64_t n);
std::string human_bytes(uint64_t n);
// "12G", "800M", "1.5GiB", "64k", "123456" (K, M, G, T are powers of 1024). Throws UsageError.
uint64_t parse_size(const std::string& text);

// The most memory this process has held resident so far (getrusage's ru_maxrss).
uint64_t peak_rss_bytes();

// Writes a float32 .npy array of the given shape (C order).
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace smoe::app

namespace smoe::app {

// --temp, --top-k, --top-p, --min-p, penalties, --seed, --stop, -n, --logprobs.
struct SamplingFlags {
  GenerateParams params;
  void add(CLI::App* cmd, float default_temperature);
};

// -t, -c, --batch-size, --kv-type, --kv-tokens.
struct ContextFlags {
  ContextOptions options;
  void add(CLI::App* cmd);
};

// --kv-type, --kv-tokens (the paged KV cache).
void add_kv_flags(CLI::App* cmd, ContextOptions& options);

// The statistics line printed after generation.
void print_stats(const GenerateStats& st);

}  // namespace smoe::app
