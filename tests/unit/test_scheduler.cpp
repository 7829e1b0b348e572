// Continuous batching on the demo model: batched answers are the answers each request gets
// alone (greedy and seeded), whatever the mix of prompt lengths, chunking, queueing, prefix
// sharing and pre-emption; cancellation frees blocks within a step; n choices share the prompt.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "smoe/generate.h"
#include "smoe/scheduler.h"

namespace smoe {
namespace {

std::shared_ptr<Model> demo() {
  static std::shared_ptr<Model> m =
      Model::load(ModelOptions{.path = std::string(SMOE_SOURCE_DIR) + "/models/demo.gguf",
                               .tokenizer_path = {},
                               .use_mmap = true,
                               .mlock = false,
                               .progress = {}});
  return m;
}

std::vector<int32_t> encode(const std::string& text) {
  return demo()->tokenizer()->encode(text, {.add_bos = true});
}

// Prompts of very different lengths: problems alone, and problems after a long run of solved
// ones (the demo model still answers the last one).
std::vector<std::string> mixed_prompts() {
  std::string history;
  for (int i = 0; i < 12; ++i)
    history += std::to_string(100 + 7 * i) + "+" + std::to_string(i) + "=" +
               std::to_string(107 * i / 7 + 100) + " ";
  return {
      "417+86=", "sort 7 3 9 1=",   history + "12+34=",  "5+5=", history + history + "sort 2 1=",
      "999+1=",  "sort 9 8 7 6 5=", history + "300+300="};
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text, reason;
  int64_t cached = 0;
};

GenerateParams greedy(int n = 12) {
  GenerateParams p;
  p.n_predict = n;
  p.sampling.temperature = 0;
  return p;
}

// Runs the requests on one scheduler, all submitted before the first step; results by request
// order and choice.
std::vector<std::vector<Outcome>> run_all(const SchedulerOptions& o, const std::vector<Request>& rs,
                                          std::vector<StepInfo>* steps = nullptr) {
  Scheduler s(demo(), o);
  if (steps) s.set_step_callback([steps](const StepInfo& i) { steps->push_back(i); });
  std::vector<std::vector<Outcome>> out(rs.size());
  int open = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    out[i].resize(static_cast<size_t>(rs[i].n));
    open += rs[i].n;
    const uint64_t id = s.submit(rs[i], [&out, &open, i](const RequestEvent& e) {
      Outcome& o = out[i][static_cast<size_t>(e.choice)];
      if (e.token.id >= 0) o.tokens.push_back(e.token.id);
      o.text += e.token.text;
      if (e.finished) {
        o.reason = e.finish_reason;
        o.cached = e.cached_tokens;
        --open;
      }
    });
    EXPECT_NE(id, 0u);
  }
  for (int guard = 0; open > 0 && guard < 100000; ++guard) s.step();
  EXPECT_EQ(open, 0);
  return out;
}

// The same request through Session, the one-sequence path.
Outcome solo(const Request& r) {
  Session session(demo(), {.n_ctx = 512});
  Outcome o;
  session.generate(r.prompt, r.params, [&](const TokenEvent& e) {
    if (e.id >= 0) o.tokens.push_back(e.id);
    o.text += e.text;
    return true;
  });
  return o;
}

SchedulerOptions opts(int max_seqs, int64_t max_batch = 512, int64_t chunk = 0, bool prefix = true,
                      int64_t kv_tokens = 0) {
  SchedulerOptions o;
  o.context.n_ctx = 512;
  o.context.max_seqs = max_seqs;
  o.context.max_batch = max_batch;
  o.context.kv_tokens = kv_tokens;
  o.prefill_chunk = chunk;
  o.prefix_caching = prefix;
  return o;
}

TEST(Scheduler, ConcurrentGreedyAnswersAreEachRequestsSoloAnswer) {
  std::vector<Request> rs;
  for (const std::string& p : mixed_prompts()) rs.push_back({encode(p), greedy()});
  std::vector<Outcome> want;
  for (const Request& r : rs) want.push_back(solo(r));
  EXPECT_EQ(want[0].text, "503");
  // All at once; a small budget and chunks; fewer slots than requests (a queue); no prefix cache.
  for (const SchedulerOptions& o :
       {opts(8), opts(8, 24, 5), opts(3, 64, 16), opts(8, 40, 7, false)}) {
    const auto got = run_all(o, rs);
    for (size_t i = 0; i < rs.size(); ++i) {
      EXPECT_EQ(got[i][0].tokens, want[i].tokens) << "request " << i;
      EXPECT_EQ(got[i][0].text, want[i].text) << "request " << i;
    }
  }
}

TEST(Scheduler, ASeededSampledAnswerIsTheSameAloneOrBatched) {
  std::vector<Request> rs;
  for (const std::string& p : mixed_prompts()) {
    Request r{encode(p), greedy(20)};
    r.params.sampling.temperature = 1.5f;
    r.params.sampling.top_k = 0;
    r.params.sampling.min_p = 0;
    r.params.sampling.seed = 1234;
    r.params.stop_at_eos = false;
    rs.push_back(r);
  }
  const auto together = run_all(opts(8, 32, 8), rs);
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto alone = run_all(opts(1), {rs[i]});
    EXPECT_EQ(together[i][0].tokens, alone[0][0].tokens) << "request " << i;
    EXPECT_EQ(together[i][0].tokens, solo(rs[i]).tokens) << "request " << i;
  }
}

TEST(Scheduler, APoolTooSmallForEveryonePreemptsAndStillAnswersRight) {
  std::vector<Request> rs;
  for (const std::string& p : mixed_prompts()) rs.push_back({encode(p), greedy(40)});
  for (Request& r : rs) r.params.stop_at_eos = false;  // long answers: the pool runs out
  std::vector<Outcome> want;
  for (const Request& r : rs) want.push_back(solo(r));
  SchedulerOptions o = opts(8, 64, 16, true, 16 * 24);  // 24 blocks for 8 sequences
  Scheduler s(demo(), o);
  std::vector<Outcome> got(rs.size());
  int open = static_cast<int>(rs.size());
  for (size_t i = 0; i < rs.size(); ++i)
    s.submit(rs[i], [&, i](const RequestEvent& e) {
      if (e.token.id >= 0) got[i].tokens.push_back(e.token.id);
      if (e.finished) --open, got[i].reason = e.finish_reason;
    });
  while (open > 0) s.step();
  EXPECT_GT(s.stats().preemptions, 0);
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].reason, "length");
  }
  EXPECT_EQ(s.stats().kv.blocks_free, s.stats().kv.blocks_total);
}

TEST(Scheduler, CancellingFreesTheSequenceWithinOneStep) {
  Scheduler s(demo(), opts(4));
  Request r{encode("417+86="), greedy(200)};
  r.params.stop_at_eos = false;
  int tokens = 0;
  std::string reason;
  const uint64_t id = s.submit(r, [&](const RequestEvent& e) {
    tokens += e.token.id >= 0;
    if (e.finished) reason = e.finish_reason;
  });
  for (int i = 0; i < 5; ++i) s.step();
  EXPECT_EQ(tokens, 5);
  EXPECT_LT(s.stats().kv.blocks_free, s.stats().kv.blocks_total);
  s.cancel(id);
  s.step();
  EXPECT_EQ(reason, "cancelled");
  EXPECT_EQ(tokens, 5);
  EXPECT_EQ(s.stats().running, 0);
  EXPECT_EQ(s.stats().kv.blocks_free, s.stats().kv.blocks_total);
  EXPECT_FALSE(s.step());  // nothing left to do
}

TEST(Scheduler, ARequestThatStartsLikeAnEarlierOneReusesItsBlocks) {
  const std::string history = mixed_prompts()[4];  // a long prompt
  Request first{encode(history), greedy()};
  Request next{encode(history + "5 1=1 5 sort 4 2="), greedy()};
  Scheduler s(demo(), opts(4));
  std::map<int, Outcome> got;
  int open = 2;
  auto cb = [&](int k) {
    return [&, k](const RequestEvent& e) {
      if (e.token.id >= 0) got[k].tokens.push_back(e.token.id);
      if (e.finished) --open, got[k].cached = e.cached_tokens;
    };
  };
  s.submit(first, cb(0));
  while (open > 1) s.step();
  s.submit(next, cb(1));
  while (open > 0) s.step();
  EXPECT_EQ(got[0].cached, 0);
  EXPECT_GE(got[1].cached, (static_cast<int64_t>(first.prompt.size()) / 16) * 16);
  EXPECT_EQ(got[1].tokens, solo(next).tokens);
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.cached_prompt_tokens, got[1].cached);
  EXPECT_EQ(st.kv.prefix_hits, got[1].cached);
}

TEST(Scheduler, ChoicesShareThePromptAndSampleWithTheirOwnSeeds) {
  Request r{encode("sort 7 3 9 1="), greedy(16)};
  r.params.sampling.temperature = 2.0f;
  r.params.sampling.top_k = 0;
  r.params.sampling.min_p = 0;
  r.params.sampling.seed = 7;
  r.params.stop_at_eos = false;
  r.n = 3;
  const auto got = run_all(opts(4), {r});
  ASSERT_EQ(got[0].size(), 3u);
  for (int c = 0; c < 3; ++c) {
    Request one = r;
    one.n = 1;
    one.params.sampling.seed = 7 + static_cast<uint64_t>(c);
    EXPECT_EQ(got[0][static_cast<size_t>(c)].tokens, solo(one).tokens) << "choice " << c;
  }
  EXPECT_NE(got[0][0].tokens, got[0][1].tokens);
  // Only two free slots for three choices: the third reads the prompt itself, same answer.
  const auto queued = run_all(opts(2), {r});
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(queued[0][static_cast<size_t>(c)].tokens, got[0][static_cast<size_t>(c)].tokens);
}

TEST(Scheduler, ALongPromptNeverTakesMoreThanOneChunkOfAStep) {
  std::vector<Request> rs;
  for (int i = 0; i < 4; ++i) rs.push_back({encode(std::to_string(i) + "+1="), greedy(30)});
  for (Request& r : rs) r.params.stop_at_eos = false;
  std::string long_prompt;
  for (int i = 0; i < 25; ++i) long_prompt += "sort 3 1 2=1 2 3 ";
  rs.push_back({encode(long_prompt + "5+6="), greedy(4)});
  std::vector<StepInfo> steps;
  run_all(opts(8, 512, 8), rs, &steps);
  int64_t read = 0;
  for (const StepInfo& st : steps) {
    if (st.decode_seqs > 0) {
      EXPECT_LE(st.prefill_tokens, 8);
    }
    read += st.prefill_tokens;
  }
  EXPECT_GT(read, static_cast<int64_t>(rs.back().prompt.size()) - 1);
}

TEST(Scheduler, RefusesWhatCanNeverRunAndWhatDoesNotFitTheQueue) {
  SchedulerOptions o = opts(2);
  o.max_waiting = 2;
  Scheduler s(demo(), o);
  EXPECT_THROW(s.submit({{}, greedy()}, nullptr), Error);
  EXPECT_THROW(s.submit({{1, 100000}, greedy()}, nullptr), Error);
  EXPECT_THROW(s.submit({std::vector<int32_t>(600, 5), greedy()}, nullptr), Error);
  Request many{encode("1+1="), greedy()};
  many.n = 129;
  EXPECT_THROW(s.submit(many, nullptr), Error);
  EXPECT_NE(s.submit({encode("1+1="), greedy()}, nullptr), 0u);
  EXPECT_NE(s.submit({encode("1+2="), greedy()}, nullptr), 0u);
  EXPECT_EQ(s.submit({encode("1+3="), greedy()}, nullptr), 0u);  // two already wait
  s.step();                                                      // both admitted
  EXPECT_NE(s.submit({encode("1+3="), greedy()}, nullptr), 0u);
}

}  // namespace
}  // namespace smoe
