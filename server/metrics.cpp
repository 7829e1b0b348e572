#include "metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace smoe::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++n_;
}

void Histogram::write(std::string& out, const std::string& name) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, n_, name, sum_,
                     name, n_);
}

Metrics::Metrics()
    : batch_tokens_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}),
      step_seconds_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
      tpot_({0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5}) {}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::step(const StepInfo& s) {
  std::lock_guard<std::mutex> lock(mu_);
  batch_tokens_.observe(static_cast<double>(s.tokens));
  step_seconds_.observe(s.seconds);
}

void Metrics::first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(seconds);
}

void Metrics::output_token_gap(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  tpot_.observe(seconds);
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string Metrics::render(const SchedulerStats& st, bool ready) const {
  std::string o;
  metric(o, "smoe_ready", "gauge", "1 once the model is loaded and requests are served.");
  o += fmt::format("smoe_ready {}\n", ready ? 1 : 0);
  metric(o, "smoe_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, n] : requests_)
      o += fmt::format("smoe_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", k.first,
                       k.second, n);
  }
  metric(o, "smoe_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
  o += fmt::format("smoe_prompt_tokens_total {}\n", st.prompt_tokens);
  metric(o, "smoe_prompt_tokens_cached_total", "counter",
         "Prompt tokens whose keys and values came from the prefix cache.");
  o += fmt::format("smoe_prompt_tokens_cached_total {}\n", st.cached_prompt_tokens);
  metric(o, "smoe_prefix_cache_hit_ratio", "gauge",
         "Cached prompt tokens over all prompt tokens so far.");
  o += fmt::format("smoe_prefix_cache_hit_ratio {}\n",
                   st.prompt_tokens ? static_cast<double>(st.cached_prompt_tokens) /
                                          static_cast<double>(st.prompt_tokens)
                                    : 0.0);
  metric(o, "smoe_generation_tokens_total", "counter", "Tokens generated.");
  o += fmt::format("smoe_generation_tokens_total {}\n", st.generated_tokens);
  metric(o, "smoe_sequences_running", "gauge", "Sequences in the running batch.");
  o += fmt::format("smoe_sequences_running {}\n", st.running);
  metric(o, "smoe_sequences_waiting", "gauge", "Sequences queued for admission.");
  o += fmt::format("smoe_sequences_waiting {}\n", st.waiting);
  metric(o, "smoe_preemptions_total", "counter", "Sequences pre-empted when the KV pool ran out.");
  o += fmt::format("smoe_preemptions_total {}\n", st.preemptions);
  metric(o, "smoe_steps_total", "counter", "Forward passes of the scheduler.");
  o += fmt::format("smoe_steps_total {}\n", st.steps);
  metric(o, "smoe_kv_blocks_used", "gauge", "KV cache blocks held by sequences.");
  o += fmt::format("smoe_kv_blocks_used {}\n", st.kv.blocks_total - st.kv.blocks_free);
  metric(o, "smoe_kv_blocks_free", "gauge", "KV cache blocks free (cached prefixes included).");
  o += fmt::format("smoe_kv_blocks_free {}\n", st.kv.blocks_free);
  metric(o, "smoe_kv_blocks_cached", "gauge", "Free KV blocks that hold a reusable prefix.");
  o += fmt::format("smoe_kv_blocks_cached {}\n", st.kv.blocks_cached);
  metric(o, "smoe_kv_block_tokens", "gauge", "Positions per KV block.");
  o += fmt::format("smoe_kv_block_tokens {}\n", st.kv.block_tokens);
  std::lock_guard<std::mutex> lock(mu_);
  metric(o, "smoe_batch_tokens", "histogram", "Tokens per forward pass.");
  batch_tokens_.write(o, "smoe_batch_tokens");
  metric(o, "smoe_step_seconds", "histogram", "Time of one scheduler step.");
  step_seconds_.write(o, "smoe_step_seconds");
  metric(o, "smoe_time_to_first_token_seconds", "histogram",
         "From a request's arrival to its first generated token.");
  ttft_.write(o, "smoe_time_to_first_token_seconds");
  metric(o, "smoe_time_per_output_token_seconds", "histogram",
         "Between consecutive tokens of one choice.");
  tpot_.write(o, "smoe_time_per_output_token_seconds");
  return o;
}

}  // namespace smoe::server
