#include "task_pool.h"

namespace smoe::server {

TaskPool::TaskPool(size_t max_threads, std::chrono::milliseconds idle)
    : max_(max_threads < 1 ? 1 : max_threads), idle_(idle) {}

TaskPool::~TaskPool() {
  shutdown();
}

void TaskPool::enqueue(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  reap();
  jobs_.push_back(std::move(fn));
  if (idle_threads_ >= jobs_.size() || live_.size() >= max_) {
    cv_.notify_one();
    return;
  }
  live_.emplace_front();
  const auto self = live_.begin();
  *self = std::thread([this, self] { work(self); });
}

void TaskPool::work(std::list<std::thread>::iterator self) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (jobs_.empty()) {
      ++idle_threads_;
      const bool woke = cv_.wait_for(lock, idle_, [&] { return !jobs_.empty() || stop_; });
      --idle_threads_;
      if (jobs_.empty() && (!woke || stop_)) break;
    }
    std::function<void()> fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    fn = nullptr;
    lock.lock();
  }
  // Hand this thread's handle to the others to join; nothing here touches the pool after this.
  ended_.push_back(std::move(*self));
  live_.erase(self);
  if (live_.empty()) done_.notify_all();
}

void TaskPool::reap() {
  for (std::thread& t : ended_) t.join();
  ended_.clear();
}

void TaskPool::shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
  done_.wait(lock, [&] { return live_.empty(); });
  reap();
}

size_t TaskPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

}  // namespace smoe::server
