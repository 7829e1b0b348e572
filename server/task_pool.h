// The HTTP server's connection threads: one per open connection, up to a limit, started when
// needed and ended after a while idle. cpp-httplib keeps a thread for the whole life of a
// keep-alive connection, so a fixed pool of a few threads would let a few idle clients block
// everyone else (/health included); threads cost little memory until used.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace smoe::server {

class TaskPool : public httplib::TaskQueue {
 public:
  TaskPool(size_t max_threads, std::chrono::milliseconds idle);
  ~TaskPool() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;  // runs what is queued, then joins every thread
  size_t threads() const;

 private:
  void work(std::list<std::thread>::iterator self);
  void reap();  // joins threads that ended (under mu_)
  const size_t max_;
  const std::chrono::milliseconds idle_;
  mutable std::mutex mu_;
  std::condition_variable cv_, done_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> live_;
  std::vector<std::thread> ended_;
  size_t idle_threads_ = 0;
  bool stop_ = false;
};

}  // namespace smoe::server
