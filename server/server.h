// `smoe serve`: an OpenAI-compatible HTTP server over the scheduler. It answers /health (503
// while the model loads) as soon as it has bound its port; once the model is in, one thread runs
// the scheduler's steps and the connection threads hand it requests and stream its tokens back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "metrics.h"
#include "smoe/chat.h"
#include "smoe/engine.h"
#include "smoe/generate.h"
#include "smoe/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace smoe::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;                // required on /v1/* and /metrics when set
  std::string model_name;             // the id /v1/models lists and responses carry
  size_t max_body = size_t{8} << 20;  // larger request bodies get 413
  size_t max_connections = 1024;      // connection threads at most
  GenerateParams defaults;            // sampling for fields a request leaves out
  std::chrono::seconds grace{5};      // on SIGTERM, how long running requests may finish
  std::string chat_template;          // "mistral", "chatml" or "raw": overrides the model's
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();

  // Binds the port (throws smoe::Error with the reason) and starts answering; the model
  // endpoints answer 503 until serve() is called.
  void start();
  // The model is loaded: requests run on a scheduler with these options.
  void serve(std::shared_ptr<const Model> model, const SchedulerOptions& sched);
  // Stops accepting, lets running requests finish for the grace period, ends the others (their
  // streams close cleanly), and returns when every connection thread has ended.
  void stop();
  std::string url() const;
  int port() const { return bound_port_; }

  struct Call;  // one API call in flight (completions.cpp)

 private:
  void routes();
  bool authorized(const httplib::Request& req, httplib::Response& res) const;
  void health(httplib::Response& res) const;
  void models(httplib::Response& res) const;
  void chat(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  void run(std::shared_ptr<Call> call, httplib::Response& res);
  void finish_whole(const std::shared_ptr<Call>& call, httplib::Response& res);
  std::string whole_body(Call& call);
  void stream(std::shared_ptr<Call> call, httplib::Response& res);
  void track(uint64_t id, bool add);
  // The call's requests are no longer in flight; those it did not finish are cancelled (their
  // sequences leave at the next step).
  void end_requests(const Call& call);
  void loop();
  static bool shut_listener(int port);

  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_, stepper_;
  int bound_port_ = 0;
  int listen_fd_ = -1;  // the listening socket, to raise cpp-httplib's backlog of 5
  std::atomic<bool> ready_{false}, stopping_{false};
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tok_;
  ChatTemplate chat_;
  std::unique_ptr<Scheduler> sched_;
  Metrics metrics_;
  int64_t created_ = 0;
  mutable std::mutex mu_;
  std::set<uint64_t> active_;  // scheduler requests in flight
};

}  // namespace smoe::server
