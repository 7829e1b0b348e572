// smoe bench: prompt-processing and generation speed on random token ids (never one repeated
// token: that would route every step to the same experts) or a text's tokens in order (--text:
// the routing of real text, for the expert cache), mean ± sd over repetitions after a warm-up,
// and decode's share of the memory-bandwidth roofline.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"
#include "common.h"
#include "smoe/bench.h"

namespace smoe::app {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct BenchFlags {
  ModelFlags model;
  std::vector<int> pp{64};
  std::vector<int> tg{32};
  int reps = 5;
  int threads = 0;
  int seqs = 1;
  bool json = false;
  bool no_amx = false;
  bool bandwidth = false;
  std::string tokenize_file;
  std::string text_file;  // token ids from this text instead of random ones
  uint64_t seed = 1234;
  int64_t depth = 0;
  ContextOptions kv;  // --kv-type, --kv-tokens
};

struct Result {
  std::string test;
  int n_prompt = 0, n_gen = 0;
  std::vector<double> ts;  // tokens/s of each repetition
  std::vector<double> bw;  // with --bandwidth, decode: GB/s read right after each repetition
  ExpertCacheStats cache;  // what the expert cache did during the test (budgeted models)
  int64_t tokens = 0;      // tokens the test processed, all repetitions
  double mean() const {
    double s = 0;
    for (double x : ts) s += x;
    return ts.empty() ? 0 : s / static_cast<double>(ts.size());
  }
  double sd() const {
    if (ts.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double x : ts) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(ts.size() - 1));
  }
};

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Encoding speed of the tokenizer on a text file: best of the repetitions.
int bench_tokenizer(const BenchFlags& f) {
  const std::string path = f.model.tokenizer.empty() ? f.model.model : f.model.tokenizer;
  if (path.empty()) throw UsageError("bench --tokenize needs -m MODEL or --tokenizer FILE");
  auto tok = Tokenizer::load(path);
  const std::string text = read_text_file(f.tokenize_file);
  double best = 1e30;
  size_t n = 0;
  for (int r = 0; r < std::max(1, f.reps); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    n = tok->encode(text, {.add_bos = false}).size();
    best = std::min(best, seconds(t0));
  }
  std::printf("tokenizer: %zu bytes -> %zu tokens in %.3f s: %.2f MB/s, %.0f tokens/s\n",
              text.size(), n, best, text.size() / best / 1e6, n / best);
  return 0;
}

// Where the tests' token ids come from: random ids, or a text's tokens in order, each run going
// on where the last one stopped and the text starting over at its end.
class TokenSource {
 public:
  TokenSource(uint64_t seed, int32_t n_vocab, std::vector<int32_t> text)
      : rng_(seed), random_(0, n_vocab - 1), text_(std::move(text)) {}
  int32_t operator()() {
    if (text_.empty()) return random_(rng_);
    const int32_t t = text_[pos_];
    pos_ = (pos_ + 1) % text_.size();
    return t;
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int32_t> random_;
  std::vector<int32_t> text_;
  size_t pos_ = 0;
};

// Brings every sequence to `depth` positions of the source's tokens, untimed: filled once, then
// cut back to `depth` before each run.
void fill_to_depth(Context& ctx, int64_t depth, int seqs, TokenSource& tok) {
  for (int s = 0; s < seqs; ++s) {
    if (ctx.seq_len(s) >= depth && depth > 0) {
      ctx.truncate(s, depth);
      continue;
    }
    ctx.clear(s);
    std::vector<BatchToken> batch;
    for (int64_t i = 0; i < depth; ++i) batch.push_back({tok(), i, s, false});
    if (!batch.empty()) ctx.decode(batch);
  }
}

// One timed run: pre-fill `pp` tokens, or generate `tg` tokens one step at a time, in `seqs`
// sequences at once, after `depth` positions already in the cache. Returns tokens/s.
double run_once(Context& ctx, int pp, int tg, int seqs, TokenSource& tok, int64_t depth = 0) {
  fill_to_depth(ctx, depth, seqs, tok);
  std::vector<BatchToken> batch;
  const auto t0 = std::chrono::steady_clock::now();
  if (pp > 0) {
    for (int s = 0; s < seqs; ++s)
      for (int i = 0; i < pp; ++i) batch.push_back({tok(), depth + i, s, i == pp - 1});
    ctx.decode(batch);
    return static_cast<double>(pp) * seqs / seconds(t0);
  }
  for (int i = 0; i < tg; ++i) {
    batch.clear();
    for (int s = 0; s < seqs; ++s) batch.push_back({tok(), depth + i, s, true});
    ctx.decode(batch);
  }
  return static_cast<double>(tg) * seqs / seconds(t0);
}

// The expert cache's figures over one test: per token, and per layer in the JSON.
nlohmann::json expert_cache_json(const ModelInfo& info, const Result& r) {
  if (!r.cache.enabled) return nullptr;
  const auto layer = [&](const ExpertCacheLayerStats& c) {
    const double t = static_cast<double>(std::max<int64_t>(r.tokens, 1));
    return nlohmann::json{{"uses", c.uses},
                          {"hits", c.hits},
                          {"misses", c.misses},
                          {"hit_rate", c.uses ? static_cast<double>(c.hits) / c.uses : 0.0},
                          {"prefetched", c.prefetched},
                          {"prefetch_used", c.prefetch_used},
                          {"prefetch_wasted", c.prefetch_wasted},
                          {"guessed", c.guessed},
                          {"guessed_right", c.guessed_right},
                          {"bytes_read", c.bytes_read},
                          {"bytes_read_per_token", static_cast<double>(c.bytes_read) / t},
                          {"wait_s", c.wait_s}};
  };
  nlohmann::json j = layer(r.cache.total());
  j["mem_budget"] = info.mem_budget;
  j["resident_bytes"] = info.resident_bytes;
  j["slots"] = info.expert_slots;
  j["slot_bytes"] = info.expert_slot_bytes;
  j["eviction"] = r.cache.eviction;
  j["prefetch"] = r.cache.prefetch;
  j["direct_io"] = r.cache.direct_io;
  j["tokens"] = r.tokens;
  j["expert_bytes"] = r.cache.expert_bytes;
  j["optimal_misses"] = r.cache.optimal_misses;
  j["static_misses"] = r.cache.static_misses;
  const double tokens = static_cast<double>(std::max<int64_t>(r.tokens, 1));
  if (r.cache.optimal_misses >= 0) {
    const double bytes = static_cast<double>(r.cache.expert_bytes);
    j["optimal_bytes_read_per_token"] =
        static_cast<double>(r.cache.optimal_misses) * bytes / tokens;
    j["static_bytes_read_per_token"] = static_cast<double>(r.cache.static_misses) * bytes / tokens;
  }
  j["layers"] = nlohmann::json::array();
  for (const ExpertCacheLayerStats& c : r.cache.layers) j["layers"].push_back(layer(c));
  return j;
}

void print_expert_cache(const Result& r) {
  if (!r.cache.enabled) return;
  const ExpertCacheLayerStats c = r.cache.total();
  const double t = static_cast<double>(std::max<int64_t>(r.tokens, 1));
  const auto per_token = [&](double bytes) {
    return human_bytes(static_cast<uint64_t>(std::max(bytes, 0.0) / t));
  };
  const double expert = static_cast<double>(r.cache.expert_bytes);
  std::printf(
      "%s expert cache (%s%s): hit rate %.1f%%, %s read per token, %.2fs waiting for reads; "
      "next-layer guess right %.1f%%, prefetches used %llu of %llu; per token, the best eviction "
      "knowing the future reads %s, the best knowing only how often experts are used %s\n",
      r.test.c_str(), r.cache.eviction.c_str(), r.cache.prefetch ? ", prefetch" : "",
      c.uses ? 100.0 * static_cast<double>(c.hits) / static_cast<double>(c.uses) : 0.0,
      per_token(static_cast<double>(c.bytes_read)).c_str(), c.wait_s,
      c.guessed ? 100.0 * static_cast<double>(c.guessed_right) / static_cast<double>(c.guessed)
                : 0.0,
      static_cast<unsigned long long>(c.prefetch_used),
      static_cast<unsigned long long>(c.prefetched),
      per_token(static_cast<double>(r.cache.optimal_misses) * expert).c_str(),
      per_token(static_cast<double>(r.cache.static_misses) * expert).c_str());
}

// The results as llama-bench's JSON keys, and smoe's own.
void print_json(const BenchFlags& f, const ModelInfo& info, const Context& ctx,
                const std::vector<Result>& results, double load_s) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Result& r : results)
    arr.push_back({{"model_filename", info.path},
                   {"model_size", info.weight_bytes},
                   {"model_n_params", info.total_params},
                   {"n_threads", ctx.n_threads()},
                   {"n_prompt", r.n_prompt},
                   {"n_gen", r.n_gen},
                   {"n_seqs", f.seqs},
                   {"n_depth", f.depth},
                   {"tokens", f.text_file.empty() ? "random" : "text " + f.text_file},
                   {"test", r.test},
                   {"avg_ts", r.mean()},
                   {"stddev_ts", r.sd()},
                   {"samples_ts", r.ts},
                   {"backend", ctx.backend_name()},
                   {"decode_bytes_per_token", info.decode_bytes_per_token},
                   {"repacked_bytes", info.repacked_bytes},
                   {"peak_rss_bytes", peak_rss_bytes()},
                   {"load_s", load_s},
                   {"expert_cache", expert_cache_json(info, r)}});
  std::printf("%s\n", arr.dump(2).c_str());
}

// The --text file's tokens (none without --text): the model's tokenizer, no BOS.
std::vector<int32_t> text_tokens(const BenchFlags& f, const Model& model) {
  if (f.text_file.empty()) return {};
  const auto tok = model.tokenizer();
  if (!tok) throw UsageError("bench --text needs a model with a tokenizer (or --tokenizer)");
  std::vector<int32_t> ids = tok->encode(read_text_file(f.text_file), {.add_bos = false});
  if (ids.empty()) throw UsageError("bench --text: " + f.text_file + " has no tokens");
  return ids;
}

// Decode's share of the bandwidth roofline: per repetition, its tokens/s against the tokens/s
// that reading the decode bytes at the bandwidth measured right after it allows; the median and
// range of those shares.
void print_roofline(const Result& r, const ModelInfo& info) {
  if (r.bw.empty() || r.bw.size() != r.ts.size()) return;
  const double bytes = static_cast<double>(info.decode_bytes_per_token);
  std::vector<double> share;
  for (size_t i = 0; i < r.ts.size(); ++i)
    share.push_back(100.0 * r.ts[i] * bytes / (r.bw[i] * 1e9));
  const double bw = median(r.bw);
  std::printf(
      "\n%s: %.1f%% of the bandwidth roofline (median of %zu repetitions, each against the "
      "bandwidth read right after it: %.1f–%.1f%%; %.1f tok/s at %.1f GB/s, the median)\n",
      r.test.c_str(), median(share), share.size(), *std::min_element(share.begin(), share.end()),
      *std::max_element(share.begin(), share.end()), bw * 1e9 / bytes, bw);
}

int run_bench(const BenchFlags& f) {
  if (!f.tokenize_file.empty()) return bench_tokenizer(f);
  if (f.bandwidth) {
    const int t = f.threads > 0 ? f.threads : default_thread_count();
    std::printf("read bandwidth: %.1f GB/s (%d threads)\n", measure_read_bandwidth(t), t);
    if (f.model.model.empty()) return 0;
  }
  if (f.model.model.empty()) throw UsageError("bench needs -m MODEL (or --bandwidth alone)");
  const auto load_start = std::chrono::steady_clock::now();
  auto model = Model::load(f.model.options());
  const double load_s = seconds(load_start);
  int max_len = 1;
  for (int p : f.pp) max_len = std::max(max_len, p);
  for (int t : f.tg) max_len = std::max(max_len, t);
  ContextOptions co = f.kv;
  co.n_threads = f.threads;
  co.n_ctx = max_len + f.depth;
  co.max_batch = std::max(512, f.seqs);
  co.max_seqs = f.seqs;
  co.amx = !f.no_amx;
  Context ctx(model, co);
  TokenSource rng(f.seed, ctx.n_vocab(), text_tokens(f, *model));
  run_once(ctx, std::min(max_len, 16), 0, f.seqs, rng);  // warm-up: pages in, caches, threads
  run_once(ctx, 0, std::min(max_len, 4), f.seqs, rng);
  std::vector<Result> results;
  // Before its measured repetitions each test runs unmeasured until two runs in a row agree
  // within 15% (at most 5 runs or 5 s): the first runs after loading are up to 2.7 times slower
  // (pp64 on the Mixtral-2L Q4_0 file, AVX-512: 240, 338, then 620-653 tok/s), and a test with
  // a short warm-up of its own measures that instead of the steady state. Under a memory budget
  // the cold cache is what is measured: no warm-up beyond the short one above.
  auto measure = [&](const std::string& name, int pp, int tg) {
    Result r{name, pp, tg, {}, {}, {}, 0};
    const auto warm_start = std::chrono::steady_clock::now();
    for (double last = 0, runs = 0;
         f.model.mem_budget.empty() && runs < 5 && seconds(warm_start) < 5.0; ++runs) {
      const double ts = run_once(ctx, pp, tg, f.seqs, rng, f.depth);
      if (last > 0 && std::abs(ts - last) <= 0.15 * std::max(ts, last)) break;
      last = ts;
    }
    model->reset_expert_stats(true);
    // Decode against the roofline: the memory's speed drifts by 20–30% within minutes on shared
    // machines, so each repetition is set against a bandwidth measured right after it.
    const bool paired = f.bandwidth && tg > 0 && pp == 0 && f.seqs == 1;
    for (int i = 0; i < f.reps; ++i) {
      r.ts.push_back(run_once(ctx, pp, tg, f.seqs, rng, f.depth));
      if (paired) r.bw.push_back(measure_read_bandwidth(ctx.n_threads()));
    }
    r.cache = model->expert_stats();
    r.tokens = static_cast<int64_t>(pp + tg) * f.seqs * f.reps;
    results.push_back(r);
  };
  const std::string suffix = (f.seqs > 1 ? "x" + std::to_string(f.seqs) : "") +
                             (f.depth > 0 ? " @ d" + std::to_string(f.depth) : "");
  for (int p : f.pp)
    if (p > 0) measure("pp" + std::to_string(p) + suffix, p, 0);
  for (int t : f.tg)
    if (t > 0) measure("tg" + std::to_string(t) + suffix, 0, t);

  const ModelInfo& info = model->info();
  if (f.json) {
    print_json(f, info, ctx, results, load_s);
    return 0;
  }
  std::printf("model: %s (%s, %s weights)\nthreads: %d, backend: %s, mmap: %s, repacked: %s\n",
              info.path.c_str(), human_count(info.total_params).c_str(),
              human_bytes(info.weight_bytes).c_str(), ctx.n_threads(), ctx.backend_name(),
              f.model.no_mmap ? "no" : "yes", human_bytes(info.repacked_bytes).c_str());
  std::printf("loaded in %.1fs; weights read per decoded token: %s\ntoken ids: %s\n", load_s,
              human_bytes(info.decode_bytes_per_token).c_str(),
              f.text_file.empty() ? "random" : ("the text of " + f.text_file).c_str());
  if (info.expert_slots > 0)
    std::printf("memory budget: %s: %s resident, %lld expert slots of %s\n",
                human_bytes(info.mem_budget).c_str(), human_bytes(info.resident_bytes).c_str(),
                static_cast<long long>(info.expert_slots),
                human_bytes(info.expert_slot_bytes).c_str());
  std::printf("\n| %-10s | %16s |\n|------------|------------------|\n", "test", "t/s");
  for (const Result& r : results)
    std::printf("| %-10s | %8.2f ± %5.2f |\n", r.test.c_str(), r.mean(), r.sd());
  for (const Result& r : results) print_expert_cache(r);
  std::printf("peak resident memory: %s\n", human_bytes(peak_rss_bytes()).c_str());
  for (const Result& r : results) print_roofline(r, info);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Runner& run) {
  auto f = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand("bench", "Measure prompt processing and generation speed");
  f->model.add(cmd, false);
  cmd->add_option("-p,--n-prompt", f->pp, "prompt lengths to test (repeatable; 0 skips)")
      ->check(is_number())
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", f->tg, "generation lengths to test (repeatable; 0 skips)")
      ->check(is_number())
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", f->reps, "repetitions of each test")
      ->check(is_number())
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "threads (0, the default: one per physical core)")
      ->check(is_number())
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--seqs", f->seqs, "sequences processed together (batched decoding)")
      ->check(is_number())
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "seed of the random token ids")->capture_default_str();
  cmd->add_option("-d,--depth", f->depth,
                  "positions already in the KV cache when each test starts (long-context speed)")
      ->check(is_number())
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  add_kv_flags(cmd, f->kv);
  cmd->add_flag("--json", f->json, "print a JSON array (llama-bench keys)");
  cmd->add_flag("--no-amx", f->no_amx, "leave AMX tiles unused (AVX-512 kernels only; to compare)");
  cmd->add_option("--text", f->text_file,
                  "token ids from this text, in order and wrapping around, instead of random ids "
                  "(real routing: the expert cache under --mem-budget)");
  cmd->add_option("--tokenize", f->tokenize_file,
                  "measure the tokenizer's encoding speed on this text");
  cmd->add_flag("--bandwidth", f->bandwidth,
                "measure memory read bandwidth and decode's share of the roofline");
  cmd->callback([&run, f] { run = [f] { return run_bench(*f); }; });
}

}  // namespace smoe::app
