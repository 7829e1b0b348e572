// What the scheduler's thread hands to the HTTP thread that answers a request: its events, owned
// (the scheduler's views into its own buffers last only as long as the callback).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "smoe/scheduler.h"

namespace smoe::server {

struct Piece {
  int choice = 0;
  int32_t id = -1;  // -1: text only (the end's released text)
  std::string text;
  float logprob = 0;
  std::vector<TokenLogprob> top;
  bool finished = false;
  std::string reason;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;

  static Piece from(const RequestEvent& e) {
    Piece p;
    p.choice = e.choice;
    p.id = e.token.id;
    p.text = std::string(e.token.text);
    p.logprob = e.token.logprob;
    if (e.token.top) p.top = *e.token.top;
    p.finished = e.finished;
    p.reason = e.finish_reason;
    p.prompt_tokens = e.prompt_tokens;
    p.cached_tokens = e.cached_tokens;
    p.generated_tokens = e.generated_tokens;
    return p;
  }
};

class Channel {
 public:
  void push(Piece p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.push_back(std::move(p));
    }
    cv_.notify_one();
  }
  // Takes everything queued, waiting up to `timeout` for the first piece.
  std::vector<Piece> take(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !q_.empty(); });
    std::vector<Piece> out(std::make_move_iterator(q_.begin()), std::make_move_iterator(q_.end()));
    q_.clear();
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Piece> q_;
};

}  // namespace smoe::server
