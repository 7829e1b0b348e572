// smoe serve: the OpenAI-compatible server (server/), with flags as llama-server's users know
// them. Binds first (so /health answers 503 while the model loads), then loads, then prints one
// line with the URL. SIGINT / SIGTERM: stop accepting, let running requests finish for the grace
// period, end the rest cleanly, exit 0.
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "commands.h"
#include "common.h"
#include "server.h"

namespace smoe::app {
namespace {

struct ServeFlags {
  ModelFlags model;
  ContextFlags ctx;
  SamplingFlags sampling;
  server::ServerOptions server;
  SchedulerOptions sched;
  std::string kv_mem;
  std::string alias;
  int grace_s = 5;
};

// "4G", "512MiB", "1.5 GB", "1000000" → bytes.
uint64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = s.substr(used);
  unit.erase(0, unit.find_first_not_of(' '));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  for (const auto& [u, m] : {std::pair{"K", 1024.0},
                             {"M", 1024.0 * 1024},
                             {"G", 1024.0 * 1024 * 1024},
                             {"T", 1024.0 * 1024 * 1024 * 1024}})
    if (unit == u || unit == std::string(u) + "B" || unit == std::string(u) + "IB") mul = m;
  if (used == 0 || mul == 0 || !(v > 0))
    throw std::runtime_error("--kv-mem: '" + s + "' is not a size (e.g. 4G, 512M)");
  return static_cast<uint64_t>(v * mul);
}

// Positions the KV pool holds in `bytes` for this model and cache type.
int64_t kv_tokens_for(const ModelInfo& i, KvType t, uint64_t bytes) {
  const double per_value = t == KvType::F32 ? 4 : t == KvType::F16 ? 2 : 34.0 / 32;
  const double per_token =
      static_cast<double>(i.n_layers * 2 * i.n_kv_heads * i.head_dim) * per_value;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::floor(static_cast<double>(bytes) / per_token)));
}

// Waits for SIGINT / SIGTERM on its own thread (the others block them) and reports it.
class SignalWatch {
 public:
  SignalWatch() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a client that left is a failed write, not the end of us
    thread_ = std::thread([this] {
      int sig = 0;
      sigwait(&set_, &sig);
      notify();
    });
  }
  ~SignalWatch() {
    if (!fired()) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  void notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fired_ = true;
    }
    cv_.notify_all();
  }
  bool fired() {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }
  // Waits until a signal arrives or `done` holds (checked whenever wake() is called).
  template <typename Pred>
  void wait(Pred done) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return fired_ || done(); });
  }
  void wake() { cv_.notify_all(); }

 private:
  sigset_t set_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool fired_ = false;
};

int run_serve(ServeFlags& f) {
  const bool demo = f.model.model.empty();
  if (demo) f.model.model = demo_model_path();
  if (f.alias.empty())
    f.alias = std::filesystem::path(f.model.model).filename().replace_extension().string();
  f.server.model_name = f.alias;
  f.server.defaults = f.sampling.params;
  f.server.grace = std::chrono::seconds(f.grace_s);
  SignalWatch signals;
  server::Server srv(f.server);
  srv.start();
  std::fprintf(stderr, "smoe serve: loading %s (GET %s/health answers 503 until it is in)\n",
               f.model.model.c_str(), srv.url().c_str());
  std::string failed;
  bool ready = false;
  std::thread loader([&] {
    try {
      auto model = Model::load(f.model.options());
      SchedulerOptions so = f.sched;
      so.context = f.ctx.options;
      so.context.max_seqs = f.sched.context.max_seqs;
      if (!f.kv_mem.empty())
        so.context.kv_tokens =
            kv_tokens_for(model->info(), so.context.kv_type, parse_size(f.kv_mem));
      srv.serve(model, so);
      std::printf("smoe serve: %s ready at %s (chat page at /, OpenAI API at /v1)\n",
                  f.alias.c_str(), srv.url().c_str());
      std::fflush(stdout);
      ready = true;
    } catch (const std::exception& e) {
      failed = e.what();
    }
    signals.wake();
  });
  signals.wait([&] { return !failed.empty(); });
  if (!failed.empty()) {
    loader.join();
    srv.stop();
    throw std::runtime_error(failed);
  }
  if (!ready) {  // a signal while loading: nothing runs yet, leave without waiting for the load
    std::fprintf(stderr, "smoe serve: stopped while loading\n");
    std::fflush(stderr);
    std::_Exit(0);
  }
  loader.join();
  std::fprintf(stderr, "smoe serve: stopping (running requests get %d s to finish)\n", f.grace_s);
  srv.stop();
  std::fprintf(stderr, "smoe serve: stopped\n");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd = app.add_subcommand(
      "serve", "Serve the model over an OpenAI-compatible HTTP API, with a chat page at /");
  f->model.add(cmd, false);
  f->ctx.add(cmd);
  // OpenAI's defaults for what a request leaves out; the flags change them.
  SamplingParams& s = f->sampling.params.sampling;
  s.top_k = 0;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  f->sampling.params.n_predict = -1;
  f->sampling.add(cmd, 1.0f);
  f->sched.context.max_seqs = 8;
  cmd->add_option("--host", f->server.host, "address to listen on (loopback unless told)")
      ->capture_default_str();
  cmd->add_option("--port", f->server.port, "port (0: any free one)")
      ->check(is_number())
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--max-seqs,--parallel", f->sched.context.max_seqs,
                  "sequences decoded together (each of a request's n choices is one)")
      ->check(is_number())
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-queue", f->sched.max_waiting,
                  "requests that may wait beyond the running ones (more get 429)")
      ->check(is_number())
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--kv-mem", f->kv_mem,
                  "memory of the KV cache for all sequences, e.g. 4G (instead of --kv-tokens)");
  cmd->add_option("--prefill-chunk", f->sched.prefill_chunk,
                  "prompt tokens per step while others decode (0: as many as keep a step within "
                  "--step-slack times a step of decoding alone)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--step-slack", f->sched.step_slack,
                  "with an automatic --prefill-chunk: how much longer than a step of decoding a "
                  "step may take while a prompt is read")
      ->check(is_number())
      ->check(CLI::Range(1.05, 100.0))
      ->capture_default_str();
  cmd->add_flag("!--no-prefix-cache", f->sched.prefix_caching,
                "do not reuse the cached keys and values of a common prefix");
  cmd->add_option("--api-key", f->server.api_key,
                  "require 'Authorization: Bearer KEY' on /v1/* and /metrics");
  cmd->add_option("--alias", f->alias, "the model's name in the API (default: the file's name)");
  cmd->add_option("--chat-template", f->server.chat_template,
                  "how chat turns become a prompt, overriding what the model file says")
      ->check(CLI::IsMember({"mistral", "chatml", "raw"}));
  cmd->add_option("--max-body", f->server.max_body, "largest request body in bytes (more: 413)")
      ->check(is_number())
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-connections", f->server.max_connections,
                  "connections served at once (each holds a thread while open)")
      ->check(is_number())
      ->check(CLI::Range(size_t{4}, size_t{65536}))
      ->capture_default_str();
  cmd->add_option("--grace", f->grace_s,
                  "seconds running requests may finish after SIGINT / SIGTERM")
      ->check(is_number())
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd->callback([&run, f] { run = [f] { return run_serve(*f); }; });
}

}  // namespace smoe::app
