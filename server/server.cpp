#include "server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "chat_page.h"
#include "openai_api.h"
#include "task_pool.h"

namespace smoe::server {
namespace {

using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body) + "\n", "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_body(e));
}

// The endpoint label of a path for the request counter (unknown paths share one).
std::string endpoint_of(const std::string& path) {
  for (const char* p :
       {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/"})
    if (path == p) return p;
  return "other";
}

constexpr int kListenBacklog = 1024;

}  // namespace

Server::Server(ServerOptions opts)
    : opts_(std::move(opts)), http_(std::make_unique<httplib::Server>()) {}

Server::~Server() {
  stop();
}

void Server::start() {
  httplib::Server& s = *http_;
  const size_t max_conn = opts_.max_connections;
  s.new_task_queue = [max_conn] { return new TaskPool(max_conn, std::chrono::seconds(10)); };
  s.set_payload_max_length(opts_.max_body);
  s.set_read_timeout(30, 0);
  s.set_write_timeout(30, 0);
  s.set_keep_alive_timeout(5);
  s.set_keep_alive_max_count(1000);
  s.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = static_cast<int>(sock);  // the last one offered is the one that binds
  });
  s.set_default_headers({{"Access-Control-Allow-Origin", "*"},
                         {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                         {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}});
  routes();
  const int port = opts_.port == 0 ? s.bind_to_any_port(opts_.host)
                                   : (s.bind_to_port(opts_.host, opts_.port) ? opts_.port : -1);
  if (port <= 0)
    throw std::runtime_error(
        fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)",
                    opts_.host, opts_.port));
  bound_port_ = port;
  // cpp-httplib listens with a backlog of 5: a burst of new connections (hundreds of clients at
  // once, or a listener slowed by a busy machine) overflows it, and a connection whose handshake
  // the kernel dropped for too long is reset. Listening again on the bound socket raises it (the
  // kernel caps it at net.core.somaxconn).
  if (listen_fd_ >= 0 && ::listen(listen_fd_, kListenBacklog) != 0)
    std::fprintf(stderr, "smoe serve: notice: the listen backlog stays at 5 (%s)\n",
                 std::strerror(errno));
  listener_ = std::thread([this] { http_->listen_after_bind(); });
}

std::string Server::url() const {
  const bool v6 = opts_.host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", opts_.host, v6 ? "]" : "", bound_port_);
}

void Server::serve(std::shared_ptr<const Model> model, const SchedulerOptions& sched) {
  model_ = std::move(model);
  tok_ = model_->tokenizer();
  if (!tok_) throw std::runtime_error("the model carries no tokenizer: give one with --tokenizer");
  chat_ = chat_template_for(model_->info().chat_template, *tok_);
  if (opts_.chat_template == "mistral")
    chat_ = {ChatFormat::MistralInstruct, "--chat-template"};
  else if (opts_.chat_template == "chatml")
    chat_ = {ChatFormat::ChatML, "--chat-template"};
  else if (opts_.chat_template == "raw")
    chat_ = {ChatFormat::Raw, "--chat-template"};
  std::fprintf(stderr, "smoe serve: chat turns as %s (%s)\n", chat_format_name(chat_.format),
               chat_.why.c_str());
  sched_ = std::make_unique<Scheduler>(model_, sched);
  sched_->set_step_callback([this](const StepInfo& i) { metrics_.step(i); });
  created_ = static_cast<int64_t>(std::time(nullptr));
  stepper_ = std::thread([this] { loop(); });
  ready_ = true;
}

// The scheduler's thread: a step whenever there is work, else a nap until some arrives. While
// idle after work, the memory the load freed goes back to the system a second after the last
// step and again every ten seconds until the next step (the heap keeps freed memory of many
// threads otherwise, and connection threads end and free theirs up to ten seconds later).
void Server::loop() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_step = Clock::now(), trimmed_at = last_step;
  bool busy_since_trim = false, settled = true;
  while (!stopping_ || sched_->stats().running + sched_->stats().waiting > 0) {
    if (sched_->step()) {
      busy_since_trim = true;
      settled = false;
      last_step = Clock::now();
      continue;
    }
    sched_->wait_for_work(std::chrono::milliseconds(50));
    const Clock::time_point now = Clock::now();
    if (settled || now - last_step < std::chrono::seconds(1)) continue;
    if (busy_since_trim || now - trimmed_at > std::chrono::seconds(10)) {
      malloc_trim(0);
      trimmed_at = now;
      busy_since_trim = false;
      settled = now - last_step > std::chrono::seconds(30);  // every thread has ended by then
    }
  }
}

void Server::track(uint64_t id, bool add) {
  std::lock_guard<std::mutex> lock(mu_);
  if (add)
    active_.insert(id);
  else
    active_.erase(id);
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  if (listener_.joinable()) {
    // No new connections; the running requests get the grace period, then end.
    std::thread ender([this] {
      const auto until = std::chrono::steady_clock::now() + opts_.grace;
      while (std::chrono::steady_clock::now() < until) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (active_.empty()) return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (uint64_t id : active_) sched_->cancel(id);
    });
    // The listening socket stops taking connections; the connection threads go on until their
    // streams end, and then the listener returns.
    if (!shut_listener(bound_port_)) http_->stop();
    listener_.join();
    ender.join();
    http_->stop();
  }
  if (stepper_.joinable()) {
    sched_->wake();
    stepper_.join();
  }
}

// Shuts the listening socket of `port` down so that accept fails: the HTTP library then stops
// accepting but lets running connections finish (its own stop() would cut streams short). The
// library does not hand out the socket, so it is found among this process's descriptors.
bool Server::shut_listener(int port) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    const int p = addr.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (p == port) return ::shutdown(fd, SHUT_RDWR) == 0;
  }
  return false;
}

bool Server::authorized(const httplib::Request& req, httplib::Response& res) const {
  if (opts_.api_key.empty()) return true;
  const std::string& p = req.path;
  if (p.rfind("/v1/", 0) != 0 && p != "/metrics") return true;
  if (req.get_header_value("Authorization") == "Bearer " + opts_.api_key) return true;
  send_error(res, ApiError(401, "missing or incorrect API key: send 'Authorization: Bearer KEY'",
                           {}, "invalid_request_error", "invalid_api_key"));
  return false;
}

void Server::health(httplib::Response& res) const {
  if (ready_)
    send_json(res, 200, {{"status", "ok"}});
  else
    send_json(res, 503, {{"status", "loading model"}});
}

void Server::models(httplib::Response& res) const {
  const ModelInfo& i = model_->info();
  send_json(res, 200,
            {{"object", "list"},
             {"data",
              {{{"id", opts_.model_name},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "smoe"},
                {"meta",
                 {{"architecture", i.architecture},
                  {"n_params", i.total_params},
                  {"n_ctx", sched_->n_ctx()},
                  {"chat_format", chat_format_name(chat_.format)}}}}}}});
}

void Server::routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS") {  // CORS pre-flight
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    return authorized(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                : httplib::Server::HandlerResponse::Handled;
  });
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = chat_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const SchedulerStats st = ready_ ? sched_->stats() : SchedulerStats{};
    res.set_content(metrics_.render(st, ready_), "text/plain; version=0.0.4");
  });
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  const auto api = [this](Handler handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!ready_) throw ApiError(503, "the model is still loading", {}, "unavailable_error");
        handler(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
      }
    };
  };
  s.Get("/v1/models",
        api([this](const httplib::Request&, httplib::Response& res) { models(res); }));
  s.Post("/v1/chat/completions",
         api([this](const httplib::Request& req, httplib::Response& res) { chat(req, res); }));
  s.Post("/v1/completions", api([this](const httplib::Request& req, httplib::Response& res) {
           completions(req, res);
         }));
  const size_t max_body = opts_.max_body;
  s.set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, ApiError(404, fmt::format("no such endpoint: {} {}", req.method, req.path),
                               {}, "invalid_request_error", "unknown_url"));
    else if (res.status == 413)
      send_error(res, ApiError(413, fmt::format("the request body is larger than {} bytes (the "
                                                "server's --max-body)",
                                                max_body)));
    else
      send_error(res, ApiError(res.status, fmt::format("HTTP error {}", res.status)));
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.request(endpoint_of(req.path), res.status);
  });
}

}  // namespace smoe::server
