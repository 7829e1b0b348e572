// The server's numbers in Prometheus' text format (GET /metrics): requests by endpoint and
// status, prompt and generated tokens, running and queued sequences, KV blocks, prefix-cache
// hits, and histograms of the batch size, the step time and the time to first token.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "smoe/scheduler.h"

namespace smoe::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Lines for `name` with cumulative buckets, _sum and _count.
  void write(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, the last one +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& endpoint, int status);
  void step(const StepInfo& s);
  void first_token(double seconds);
  void output_token_gap(double seconds);  // between two tokens of one stream
  std::string render(const SchedulerStats& st, bool ready) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram batch_tokens_, step_seconds_, ttft_, tpot_;
};

}  // namespace smoe::server
