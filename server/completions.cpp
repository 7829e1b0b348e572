// The two generating endpoints: a call becomes one scheduler request per prompt (each with its
// n choices); its events come back through a channel and leave as one JSON response or as a
// stream of server-sent events in OpenAI's chunk shape.
#include <fmt/format.h>
#include <httplib.h>

#include <ctime>
#include <random>

#include "channel.h"
#include "openai_api.h"
#include "server.h"

namespace smoe::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Server::Call {
  bool chat = true;
  std::string id, model;
  int64_t created = 0;
  Options opt;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> prompt_texts;
  std::shared_ptr<Channel> ch = std::make_shared<Channel>();
  std::vector<uint64_t> requests;  // the scheduler's ids
  std::vector<ChoiceResult> results;
  int finished = 0;
  bool started = false, ended = false;
  Clock::time_point arrival = Clock::now();

  int choices() const { return static_cast<int>(results.size()); }
  Usage usage() const {
    Usage u;
    for (int i = 0; i < choices(); ++i) {
      const ChoiceResult& r = results[static_cast<size_t>(i)];
      u.completion += r.generated_tokens;
      if (i % opt.n == 0) {  // the prompt counts once for its n choices
        u.prompt += r.prompt_tokens;
        u.cached += r.cached_tokens;
      }
    }
    return u;
  }
};

namespace {

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

// Folds a piece into its choice's result; returns whether the choice ended with it.
bool gather(Server::Call& c, const Piece& p) {
  ChoiceResult& r = c.results[static_cast<size_t>(p.choice)];
  r.text += p.text;
  if (p.id >= 0 && c.opt.want_logprobs) r.tokens.push_back(p);
  if (!p.finished) return false;
  r.finish_reason = p.reason;
  r.prompt_tokens = p.prompt_tokens;
  r.cached_tokens = p.cached_tokens;
  r.generated_tokens = p.generated_tokens;
  ++c.finished;
  return true;
}

}  // namespace

void Server::chat(const httplib::Request& req, httplib::Response& res) {
  ChatBody b = parse_chat(parse_json(req.body), opts_.defaults);
  auto c = std::make_shared<Call>();
  c->chat = true;
  c->opt = std::move(b.opt);
  try {
    c->prompts.push_back(encode_chat(*tok_, b.messages, chat_.format));
  } catch (const std::runtime_error& e) {
    throw ApiError(400, e.what(), "messages");
  }
  c->prompt_texts.push_back({});
  run(c, res);
}

void Server::completions(const httplib::Request& req, httplib::Response& res) {
  CompletionBody b = parse_completion(parse_json(req.body), opts_.defaults, *tok_);
  auto c = std::make_shared<Call>();
  c->chat = false;
  c->opt = std::move(b.opt);
  c->prompts = std::move(b.prompts);
  c->prompt_texts = std::move(b.prompt_texts);
  run(c, res);
}

void Server::run(std::shared_ptr<Call> c, httplib::Response& res) {
  c->id = random_id(c->chat ? "chatcmpl-" : "cmpl-");
  c->created = static_cast<int64_t>(std::time(nullptr));
  c->model = opts_.model_name;
  const int64_t n_ctx = sched_->n_ctx();
  for (const auto& p : c->prompts)
    if (static_cast<int64_t>(p.size()) >= n_ctx)
      throw ApiError(400,
                     fmt::format("this model's context holds {} tokens, but the {} has {} tokens "
                                 "(and the answer needs room too)",
                                 n_ctx, c->chat ? "conversation" : "prompt", p.size()),
                     c->chat ? "messages" : "prompt", {}, "context_length_exceeded");
  c->results.resize(c->prompts.size() * static_cast<size_t>(c->opt.n));
  for (size_t i = 0; i < c->prompts.size(); ++i) {
    Request r{c->prompts[i], c->opt.gen, c->opt.want_logprobs, c->opt.n};
    const int offset = static_cast<int>(i) * c->opt.n;
    auto last = std::make_shared<std::vector<Clock::time_point>>(c->opt.n);
    auto cb = [ch = c->ch, offset, last, arrival = c->arrival,
               m = &metrics_](const RequestEvent& e) {
      Piece p = Piece::from(e);
      if (p.id >= 0) {
        const Clock::time_point now = Clock::now();
        Clock::time_point& prev = (*last)[static_cast<size_t>(p.choice)];
        if (prev == Clock::time_point{})
          m->first_token(std::chrono::duration<double>(now - arrival).count());
        else
          m->output_token_gap(std::chrono::duration<double>(now - prev).count());
        prev = now;
      }
      p.choice += offset;
      ch->push(std::move(p));
    };
    uint64_t id = 0;
    try {
      id = sched_->submit(std::move(r), cb);
    } catch (const std::runtime_error& e) {  // the engine refuses what can never run
      end_requests(*c);                      // not ended: all cancelled
      throw ApiError(400, e.what(), c->chat ? "messages" : "prompt");
    }
    if (id == 0) {
      end_requests(*c);  // not ended: all cancelled
      res.set_header("Retry-After", "2");
      throw ApiError(429, "the server is busy: its queue is full; retry in a moment", {},
                     "rate_limit_error", "rate_limit_exceeded");
    }
    c->requests.push_back(id);
    track(id, true);
  }
  if (c->opt.stream)
    stream(c, res);
  else
    finish_whole(c, res);
}

void Server::end_requests(const Call& c) {
  for (uint64_t id : c.requests) {
    if (!c.ended) sched_->cancel(id);
    track(id, false);
  }
}

// The answer as one JSON body, once every choice has finished.
std::string Server::whole_body(Call& c) {
  if (!c.chat && c.opt.echo)
    for (int i = 0; i < c.choices(); ++i)
      c.results[static_cast<size_t>(i)].text.insert(
          0, c.prompt_texts[static_cast<size_t>(i / c.opt.n)]);
  const json body = c.chat ? chat_response(c.id, c.created, c.model, c.results, c.usage(),
                                           c.opt.want_logprobs, *tok_)
                           : completion_response(c.id, c.created, c.model, c.results, c.usage(),
                                                 c.opt.want_logprobs, *tok_);
  return dump(body) + "\n";
}

// A request not streamed. An answer ready within a second goes out as one body with its length.
// A longer one is sent in chunks: a newline each second while it is computed (whitespace, which
// JSON allows before the value), then the body. Those writes are how a client that has left is
// noticed (cpp-httplib reports a closed connection only on a failed write): its sequences then
// leave at the next step instead of running to the end.
void Server::finish_whole(const std::shared_ptr<Call>& c, httplib::Response& res) {
  const Clock::time_point until = Clock::now() + std::chrono::seconds(1);
  while (c->finished < c->choices() && Clock::now() < until)
    for (const Piece& p : c->ch->take(std::chrono::milliseconds(100))) gather(*c, p);
  res.status = 200;
  if (c->finished == c->choices()) {
    c->ended = true;
    end_requests(*c);
    res.set_content(whole_body(*c), "application/json");
    return;
  }
  // The first newline goes out at once: every answer sent in chunks begins with one.
  auto beat = std::make_shared<Clock::time_point>(Clock::now() - std::chrono::seconds(1));
  const auto provider = [this, c, beat](size_t, httplib::DataSink& sink) {
    for (const Piece& p : c->ch->take(std::chrono::milliseconds(200))) gather(*c, p);
    if (c->finished < c->choices()) {
      if (Clock::now() - *beat < std::chrono::seconds(1)) return sink.is_writable();
      *beat = Clock::now();
      return sink.write("\n", 1);
    }
    const std::string body = whole_body(*c);
    c->ended = true;
    if (!sink.write(body.data(), body.size())) return false;
    sink.done();
    return true;
  };
  const auto release = [this, c](bool) { end_requests(*c); };
  res.set_chunked_content_provider("application/json", provider, release);
}

namespace {

// The chunks one piece of a stream becomes (none for a token whose text is held back, unless its
// log-probability was asked for).
std::vector<json> chunks_of(const Server::Call& c, const Piece& p, const Tokenizer& tok) {
  std::vector<json> out;
  const bool lp = c.opt.want_logprobs && p.id >= 0;
  if (!p.text.empty() || lp) {
    const std::vector<Piece> one = lp ? std::vector<Piece>{p} : std::vector<Piece>{};
    if (c.chat)
      out.push_back(chat_chunk(c.id, c.created, c.model, p.choice, {{"content", p.text}},
                               lp ? chat_logprobs(one, tok) : json(nullptr), ""));
    else
      out.push_back(completion_chunk(c.id, c.created, c.model, p.choice, p.text,
                                     lp ? completion_logprobs(one, tok, 0) : json(nullptr), ""));
  }
  if (p.finished) {
    const std::string why = finish_reason_of(p.reason);
    if (c.chat)
      out.push_back(chat_chunk(c.id, c.created, c.model, p.choice, json::object(), nullptr, why));
    else
      out.push_back(completion_chunk(c.id, c.created, c.model, p.choice, "", nullptr, why));
  }
  return out;
}

}  // namespace

void Server::stream(std::shared_ptr<Call> c, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const auto provider = [this, c](size_t, httplib::DataSink& sink) {
    const auto write = [&](const json& j) {
      const std::string s = "data: " + dump(j) + "\n\n";
      return sink.write(s.data(), s.size());
    };
    if (!c->started) {
      c->started = true;
      for (int i = 0; i < c->choices(); ++i) {
        const json first =
            c->chat
                ? chat_chunk(c->id, c->created, c->model, i,
                             {{"role", "assistant"}, {"content", ""}}, nullptr, "")
                : completion_chunk(c->id, c->created, c->model, i,
                                   c->opt.echo ? c->prompt_texts[i / c->opt.n] : "", nullptr, "");
        if ((c->chat || c->opt.echo) && !write(first)) return false;
      }
    }
    for (const Piece& p : c->ch->take(std::chrono::milliseconds(100))) {
      gather(*c, p);
      for (const json& j : chunks_of(*c, p, *tok_))
        if (!write(j)) return false;
    }
    if (c->finished < c->choices()) return sink.is_writable();
    if (c->opt.include_usage &&
        !write(usage_chunk(c->id, c->created, c->model,
                           c->chat ? "chat.completion.chunk" : "text_completion", c->usage())))
      return false;
    const std::string done = "data: [DONE]\n\n";
    if (!sink.write(done.data(), done.size())) return false;
    c->ended = true;
    sink.done();
    return true;
  };
  // Whatever ended the stream (the client left, a write failed, the server stops), the requests
  // end with it: their sequences leave at the next step.
  const auto release = [this, c](bool) { end_requests(*c); };
  res.set_chunked_content_provider("text/event-stream", provider, release);
}

}  // namespace smoe::server
