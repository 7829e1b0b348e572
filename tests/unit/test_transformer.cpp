// The forward pass's invariants: cached decode = full recompute, any pre-fill chunking (also
// after a rolling buffer wrapped), batching of several sequences, every naming scheme, logits of
// only some entries.
#include <gtest/gtest.h>

#include <memory>

#include "../support/memory_source.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace smoe {
namespace {

using test::make_model;
using test::tiny_mistral;
using test::tiny_mixtral;

// A model bound from an in-memory source with its own cache and threads.
struct Runner {
  ModelConfig cfg;
  ModelWeights w;
  ThreadPool pool;
  std::unique_ptr<Backend> backend;
  KvCache cache;
  Transformer tf;

  Runner(const ModelConfig& c, std::shared_ptr<const WeightSource> src, NameScheme s,
         int max_seqs = 1, int64_t max_batch = 128, int threads = 2, const KvCacheOptions& kv = {})
      : cfg(c),
        w(bind_weights(std::move(src), cfg, s)),
        pool(threads),
        backend(make_backend({.max_cols = std::max(cfg.dim, cfg.hidden_dim),
                              .max_rows = max_batch,
                              .n_threads = threads,
                              .reference = true})),
        cache(cfg, cfg.max_context, max_seqs, kv),
        tf(cfg, w, max_batch, cfg.max_context, threads, kv.dtype) {}

  // Logits of every position of `ids` from `from` on, fed in chunks of `chunk` to sequence `seq`
  // (which already holds the positions before `from`).
  std::vector<float> run(const std::vector<int32_t>& ids, int64_t chunk, int seq = 0,
                         size_t from = 0) {
    std::vector<float> out;
    std::vector<float> lg(static_cast<size_t>(chunk * cfg.vocab_size));
    for (size_t b = from; b < ids.size(); b += chunk) {
      std::vector<BatchEntry> batch;
      for (size_t i = b; i < std::min(ids.size(), b + chunk); ++i)
        batch.push_back({ids[i], static_cast<int64_t>(i), seq, true});
      tf.check_batch(batch.data(), static_cast<int64_t>(batch.size()), cache);
      tf.forward(batch.data(), static_cast<int64_t>(batch.size()), cache, lg.data(),
                 {*backend, pool, nullptr});
      out.insert(out.end(), lg.begin(), lg.begin() + batch.size() * cfg.vocab_size);
    }
    return out;
  }
};

std::vector<int32_t> prompt(int n, int vocab, uint32_t seed = 7) {
  std::vector<int32_t> ids;
  uint32_t x = seed;
  for (int i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    ids.push_back(static_cast<int32_t>((x >> 8) % static_cast<uint32_t>(vocab)));
  }
  return ids;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  EXPECT_LE(worst, tol);
}

TEST(Transformer, ChunkedPrefillMatchesTokenByTokenMoe) {
  const ModelConfig c = tiny_mixtral();
  Runner whole(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  const auto ids = prompt(40, static_cast<int>(c.vocab_size));
  const auto ref = whole.run(ids, 40);
  for (int64_t chunk : {1, 3, 7, 39}) {
    Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
    expect_close(r.run(ids, chunk), ref, 1e-5f);
  }
}

TEST(Transformer, SlidingWindowChunksAgreeAfterWrapping) {
  const int64_t W = 16;
  const ModelConfig c = tiny_mistral(W);
  const auto ids = prompt(70, static_cast<int>(c.vocab_size));  // wraps the buffer 4 times
  Runner whole(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  const auto ref = whole.run(ids, 70);
  for (int64_t chunk : {int64_t{1}, int64_t{3}, W - 1, W, W + 1, int64_t{70}}) {
    Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
    expect_close(r.run(ids, chunk), ref, 1e-5f);
    EXPECT_LE(r.cache.blocks_held(0), W / r.cache.block_tokens() + 1);  // the window, paged
  }
}

TEST(Transformer, WindowActuallyLimitsAttention) {
  // Same weights: with W >= length the window changes nothing; with a small W later logits differ.
  const auto ids = prompt(40, 50);
  const ModelConfig full = tiny_mistral(0), wide = tiny_mistral(64), narrow = tiny_mistral(8);
  Runner a(full, make_model(full, NameScheme::Gguf), NameScheme::Gguf);
  Runner b(wide, make_model(wide, NameScheme::Gguf), NameScheme::Gguf);
  Runner n(narrow, make_model(narrow, NameScheme::Gguf), NameScheme::Gguf);
  const auto la = a.run(ids, 40), lb = b.run(ids, 40), ln = n.run(ids, 40);
  expect_close(la, lb, 0.0f);
  // Positions < W see the same keys in both; later ones must differ.
  const size_t v = 50;
  EXPECT_EQ(std::vector<float>(la.begin(), la.begin() + 8 * v),
            std::vector<float>(ln.begin(), ln.begin() + 8 * v));
  EXPECT_NE(std::vector<float>(la.end() - v, la.end()), std::vector<float>(ln.end() - v, ln.end()));
}

TEST(Transformer, BatchedSequencesMatchSolo) {
  const ModelConfig c = tiny_mixtral();
  const std::vector<std::vector<int32_t>> seqs = {prompt(5, 50, 1), prompt(11, 50, 2),
                                                  prompt(8, 50, 3)};
  std::vector<std::vector<float>> solo;
  for (const auto& s : seqs) {
    Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
    solo.push_back(r.run(s, 1));
  }
  // Together: first all prompts interleaved in one batch (3 tokens each), then one token per
  // sequence per step, as a server decodes.
  Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 3);
  std::vector<std::vector<float>> got(3);
  std::vector<size_t> next(3, 0);
  std::vector<float> lg(128 * c.vocab_size);
  for (int step = 0; step < 12; ++step) {
    std::vector<BatchEntry> batch;
    for (int s = 0; s < 3; ++s)
      for (int k = 0; k < (step == 0 ? 3 : 1) && next[s] < seqs[s].size(); ++k, ++next[s])
        batch.push_back({seqs[s][next[s]], static_cast<int64_t>(next[s]), s, true});
    if (batch.empty()) break;
    r.tf.check_batch(batch.data(), static_cast<int64_t>(batch.size()), r.cache);
    r.tf.forward(batch.data(), static_cast<int64_t>(batch.size()), r.cache, lg.data(),
                 {*r.backend, r.pool, nullptr});
    for (size_t i = 0; i < batch.size(); ++i)
      got[batch[i].seq].insert(got[batch[i].seq].end(), lg.begin() + i * c.vocab_size,
                               lg.begin() + (i + 1) * c.vocab_size);
  }
  for (int s = 0; s < 3; ++s) expect_close(got[s], solo[s], 1e-5f);
}

// Counts the routing reports per layer.
struct CountingObserver : ForwardObserver {
  std::vector<int64_t> per_layer;
  void on_routing(int layer, int64_t, const int32_t*, const float*, int) override {
    if (per_layer.size() <= static_cast<size_t>(layer)) per_layer.resize(layer + 1);
    ++per_layer[layer];
  }
};

// Pre-fill that wants the logits of only some entries (or none) runs the last layer past its
// attention for those alone: their logits, and everything decoded after (the cache still holds
// every entry's keys and values), equal those of a pass that computes all logits.
TEST(Transformer, LogitsOfSomeEntriesMatchThoseOfAllAndKeepTheCacheWhole) {
  for (const ModelConfig& c : {tiny_mixtral(), tiny_mistral(4)}) {  // 4: the window wraps
    const std::vector<std::vector<int32_t>> seqs = {prompt(13, 50, 4), prompt(9, 50, 5)};
    const int64_t v = c.vocab_size;
    std::vector<float> lg(128 * v);
    // Step 0: both prompts in one batch, logits wanted at `want`; steps 1, 2: no logits, then all.
    auto run = [&](bool all) {
      Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 2);
      std::vector<float> out;
      std::vector<size_t> next(2, 0);
      for (int step = 0; step < 3; ++step) {
        std::vector<BatchEntry> b;
        for (int s = 0; s < 2; ++s)
          for (int k = 0; k < (step == 0 ? 6 : 1); ++k, ++next[s]) {
            const bool want = step == 2 || (step == 0 && (k == 5 || (s == 0 && k == 2)));
            b.push_back({seqs[s][next[s]], static_cast<int64_t>(next[s]), s, all || want});
          }
        r.tf.check_batch(b.data(), static_cast<int64_t>(b.size()), r.cache);
        r.tf.forward(b.data(), static_cast<int64_t>(b.size()), r.cache, lg.data(),
                     {*r.backend, r.pool, nullptr});
        int64_t j = 0;
        for (size_t i = 0; i < b.size(); ++i) {
          if (!b[i].logits) continue;
          const bool want = step == 2 || (step == 0 && (i == 2 || i == 5 || i == 11));
          if (want) out.insert(out.end(), lg.begin() + j * v, lg.begin() + (j + 1) * v);
          ++j;
        }
      }
      return out;
    };
    const auto some = run(false), all = run(true);
    EXPECT_EQ(some.size(), static_cast<size_t>(5 * v));
    expect_close(some, all, 1e-5f);
  }
}

TEST(Transformer, AnObserverSeesEveryEntryRoutedInEveryLayer) {
  const ModelConfig c = tiny_mixtral();
  Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  const auto ids = prompt(7, 50);
  std::vector<BatchEntry> b;
  for (int i = 0; i < 7; ++i) b.push_back({ids[i], i, 0, i == 6});
  std::vector<float> lg(c.vocab_size);
  CountingObserver obs;
  r.tf.forward(b.data(), 7, r.cache, lg.data(), {*r.backend, r.pool, &obs});
  EXPECT_EQ(obs.per_layer, std::vector<int64_t>(static_cast<size_t>(c.n_layers), 7));
  Runner all(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  const auto ref = all.run(ids, 7);
  expect_close(lg, std::vector<float>(ref.end() - c.vocab_size, ref.end()), 1e-5f);
}

TEST(Transformer, EveryNamingSchemeAndExpertLayoutGivesTheSameLogits) {
  const ModelConfig c = tiny_mixtral();
  const auto ids = prompt(12, 50);
  Runner gguf(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  Runner legacy(c, make_model(c, NameScheme::Gguf, 1, DType::F32, false), NameScheme::Gguf);
  Runner hf(c, make_model(c, NameScheme::HuggingFace), NameScheme::HuggingFace);
  Runner mistral(c, make_model(c, NameScheme::Mistral), NameScheme::Mistral);
  const auto ref = gguf.run(ids, 12);
  expect_close(legacy.run(ids, 12), ref, 0.0f);
  expect_close(hf.run(ids, 12), ref, 0.0f);  // rows un-permuted exactly
  expect_close(mistral.run(ids, 12), ref, 0.0f);
}

TEST(Transformer, HalfPrecisionWeightsStayClose) {
  const ModelConfig c = tiny_mixtral();
  const auto ids = prompt(10, 50);
  Runner f32(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  Runner f16(c, make_model(c, NameScheme::Gguf, 1, DType::F16), NameScheme::Gguf);
  Runner bf16(c, make_model(c, NameScheme::Gguf, 1, DType::BF16), NameScheme::Gguf);
  const auto ref = f32.run(ids, 10);
  expect_close(f16.run(ids, 10), ref, 0.05f);
  expect_close(bf16.run(ids, 10), ref, 0.5f);
}

TEST(Transformer, RejectsBadBatches) {
  const ModelConfig c = tiny_mixtral();
  Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 2);
  auto check = [&](std::vector<BatchEntry> b) {
    r.tf.check_batch(b.data(), static_cast<int64_t>(b.size()), r.cache);
  };
  EXPECT_THROW(check({{50, 0, 0, true}}), Error);  // token out of vocabulary
  EXPECT_THROW(check({{-1, 0, 0, true}}), Error);
  EXPECT_THROW(check({{1, 1, 0, true}}), Error);                   // skips position 0
  EXPECT_THROW(check({{1, 0, 0, true}, {2, 2, 0, true}}), Error);  // gap
  EXPECT_THROW(check({{1, 0, 2, true}}), Error);                   // no such sequence
  EXPECT_NO_THROW(check({{1, 0, 0, true}, {2, 0, 1, true}, {3, 1, 0, true}}));
  std::vector<BatchEntry> too_long;
  for (int64_t i = 0; i <= c.max_context; ++i) too_long.push_back({1, i, 0, false});
  try {
    check(too_long);
    FAIL() << "context overflow accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context size"), std::string::npos) << e.what();
  }
}

// With keys and values in f16 every query reads them rounded, whatever chunk computed them: any
// chunking gives the same logits, and they stay near the f32 cache's.
TEST(Transformer, HalfPrecisionCacheIsChunkIndependentAndNearF32) {
  const ModelConfig c = tiny_mixtral();
  const auto ids = prompt(40, 50);
  const KvCacheOptions f16{.dtype = DType::F16, .block_tokens = 4};
  Runner whole(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 1, 128, 2, f16);
  const auto ref = whole.run(ids, 40);
  for (int64_t chunk : {1, 3, 17}) {
    Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 1, 128, 2, f16);
    expect_close(r.run(ids, chunk), ref, 0.0f);
  }
  Runner exact(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  const auto f32 = exact.run(ids, 40);
  expect_close(f32, ref, 2e-2f);  // logits of this random model are in the tens
  EXPECT_NE(f32, ref);            // the cache's type is in use
}

// A sequence that reuses another's published prefix computes the rest exactly as if it had
// computed everything; a forked sequence goes on exactly as the original would.
TEST(Transformer, ReusedPrefixAndForkGiveTheLogitsOfARecompute) {
  const ModelConfig c = tiny_mixtral();
  const KvCacheOptions kv{.dtype = DType::F16, .block_tokens = 4};
  const auto shared = prompt(13, 50, 3);
  auto a = shared, b = shared;
  const auto tail_a = prompt(5, 50, 4), tail_b = prompt(6, 50, 5);
  a.insert(a.end(), tail_a.begin(), tail_a.end());
  b.insert(b.end(), tail_b.begin(), tail_b.end());
  Runner solo(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 1, 128, 2, kv);
  const auto want_b = solo.run(b, 64);

  Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf, 3, 128, 2, kv);
  r.run(a, 64, 0);
  r.cache.publish(0, a.data(), static_cast<int64_t>(a.size()));
  const int64_t reused = r.cache.attach_prefix(1, b.data(), static_cast<int64_t>(b.size()));
  EXPECT_EQ(reused, 12);  // three whole blocks of the 13 shared tokens
  const auto got_b = r.run(b, 64, 1, static_cast<size_t>(reused));
  expect_close(got_b, std::vector<float>(want_b.begin() + reused * c.vocab_size, want_b.end()),
               0.0f);

  // Fork b into sequence 2 and decode the same next token in both: equal logits.
  r.cache.fork(1, 2);
  std::vector<int32_t> next = b;
  next.push_back(7);
  const auto from1 = r.run(next, 1, 1, b.size());
  const auto from2 = r.run(next, 1, 2, b.size());
  expect_close(from1, from2, 0.0f);
  EXPECT_EQ(r.cache.stats().copies, 1);  // the shared half block, copied by the second writer
}

TEST(Transformer, TruncatedSequenceRecomputesTheSame) {
  const ModelConfig c = tiny_mixtral();
  Runner r(c, make_model(c, NameScheme::Gguf), NameScheme::Gguf);
  auto ids = prompt(20, 50);
  const auto first = r.run(ids, 20);
  r.cache.truncate(0, 10);
  std::vector<int32_t> tail(ids.begin() + 10, ids.end());
  std::vector<float> lg(10 * c.vocab_size);
  std::vector<BatchEntry> b;
  for (int i = 10; i < 20; ++i) b.push_back({ids[i], i, 0, true});
  r.tf.forward(b.data(), 10, r.cache, lg.data(), {*r.backend, r.pool, nullptr});
  expect_close(lg, std::vector<float>(first.begin() + 10 * c.vocab_size, first.end()), 1e-5f);
}

}  // namespace
}  // namespace smoe
