// Sampling and context flags, spelled as llama.cpp users know them.
#include <cstdio>
#include <map>

#include "common.h"
#include "log.h"

namespace smoe::app {

void SamplingFlags::add(CLI::App* cmd, float default_temperature) {
  SamplingParams& s = params.sampling;
  s.temperature = default_temperature;
  cmd->add_option("-n,--n-predict", params.n_predict,
                  "tokens to generate (-1: until context is full)")
      ->check(is_number())
      ->check(CLI::Range(-1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--temp", s.temperature, "temperature (0: greedy)")
      ->check(is_number())
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")
      ->check(is_number())
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "nucleus sampling threshold (1: off)")
      ->check(is_number())
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "drop tokens below min-p times the best probability (0: off)")
      ->check(is_number())
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "penalty for repeated tokens (1: off)")
      ->check(is_number())
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalties look back (-1: all)")
      ->check(is_number())
      ->check(CLI::Range(-1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "minus count times this")
      ->check(is_number())
      ->check(CLI::Range(-100.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "minus this once a token appeared")
      ->check(is_number())
      ->check(CLI::Range(-100.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed: the same seed gives the same text")
      ->capture_default_str();
  cmd->add_option("--stop", params.stop, "stop when this text appears (repeatable; not printed)");
  cmd->add_option("--logprobs", params.logprobs, "print the top K log-probabilities per token")
      ->check(is_number())
      ->check(CLI::Range(0, 100));
  cmd->add_flag("!--ignore-eos", params.stop_at_eos, "keep generating after end-of-sequence");
}

void ContextFlags::add(CLI::App* cmd) {
  options.n_threads = 0;
  cmd->add_option("-t,--threads", options.n_threads,
                  "threads (0, the default: one per physical core)")
      ->check(is_number())
      ->check(CLI::Range(0, 1024));
  cmd->add_option("-c,--ctx-size", options.n_ctx, "context size in tokens")
      ->check(is_number())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("-b,--batch-size", options.max_batch, "tokens per pre-fill pass")
      ->check(is_number())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  add_kv_flags(cmd, options);
}

void add_kv_flags(CLI::App* cmd, ContextOptions& options) {
  const std::map<std::string, KvType> kv_types{
      {"f16", KvType::F16}, {"f32", KvType::F32}, {"q8_0", KvType::Q8_0}};
  cmd->add_option("--kv-type", options.kv_type,
                  "how the KV cache stores keys and values: f16, f32 (exact) or q8_0 (a quarter "
                  "of f32's memory; head size a multiple of 32)")
      ->transform(CLI::CheckedTransformer(kv_types, CLI::ignore_case))
      ->default_str("f16");
  cmd->add_option("--kv-tokens", options.kv_tokens,
                  "positions the KV cache holds for all sequences together (default: each "
                  "sequence its whole context)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
}

void print_stats(const GenerateStats& st) {
  log_line(
      fmt::format("[prompt: {} tokens, {:.1f} tok/s | generated: {} tokens, {:.1f} tok/s | first "
                  "token after {:.0f} ms | stop: {}]",
                  st.n_prompt, st.prompt_tps(), st.n_generated, st.gen_tps(),
                  st.first_token_seconds * 1e3, st.stop_reason),
      true);
}

}  // namespace smoe::app
