// Each sampler stage on its own, the chain's determinism, and stop strings across tokens.
#include <gtest/gtest.h>

#include "engine/sampler.h"
#include "engine/stop_matcher.h"

namespace smoe {
namespace {

std::vector<Candidate> cands(std::vector<float> logits) {
  std::vector<Candidate> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<int32_t>(i), logits[i], 0});
  return c;
}

TEST(Sampling, RepeatPenaltyDividesPositiveAndMultipliesNegative) {
  auto c = cands({2.0f, -2.0f, 1.0f});
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  sampling::apply_penalties(c, {0, 1}, p);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -4.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 1.0f);
}

TEST(Sampling, FrequencyAndPresencePenalties) {
  auto c = cands({1.0f, 1.0f, 1.0f});
  SamplingParams p;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  sampling::apply_penalties(c, {0, 0, 0, 1}, p);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f - 1.5f - 0.25f);
  EXPECT_FLOAT_EQ(c[1].logit, 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c[2].logit, 1.0f);
}

TEST(Sampling, TopKKeepsTheBestWithLowerIdOnTies) {
  auto c = cands({0.1f, 3.0f, 3.0f, -1.0f, 2.0f});
  sampling::top_k(c, 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 2);
  EXPECT_EQ(c[2].id, 4);
}

TEST(Sampling, SoftmaxTemperature) {
  auto c = cands({std::log(3.0f), 0.0f});
  sampling::softmax(c, 1.0f);
  EXPECT_NEAR(c[0].p, 0.75f, 1e-6);
  sampling::softmax(c, 0.5f);  // logits doubled: 9 : 1
  EXPECT_NEAR(c[0].p, 0.9f, 1e-6);
}

TEST(Sampling, TopPKeepsTheSmallestPrefixReachingP) {
  auto c = cands({0, 0, 0, 0});
  const float ps[4] = {0.5f, 0.3f, 0.15f, 0.05f};
  for (int i = 0; i < 4; ++i) c[i].p = ps[i];
  sampling::top_p(c, 0.8f);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].p, 0.5f / 0.8f, 1e-6);
  auto one = cands({0, 0});
  one[0].p = 0.9f;
  one[1].p = 0.1f;
  sampling::top_p(one, 0.1f);
  EXPECT_EQ(one.size(), 1u);
}

TEST(Sampling, MinPDropsUnlikelyTokens) {
  auto c = cands({0, 0, 0});
  c[0].p = 0.6f;
  c[1].p = 0.35f;
  c[2].p = 0.05f;
  sampling::min_p(c, 0.1f);  // cut at 0.06
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0].p + c[1].p, 1.0f, 1e-6);
}

TEST(Sampling, GreedyIsArgmax) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p, 4);
  const float lg[4] = {0.1f, 0.7f, 0.7f, -3.0f};
  EXPECT_EQ(s.sample(lg, {}), 1);
}

TEST(Sampling, LogitBiasBansAndForcesTokensGreedyOrSampled) {
  const float lg[4] = {0.1f, 0.7f, 0.5f, -3.0f};
  SamplingParams p;
  p.temperature = 0.0f;
  p.logit_bias = {{1, -100.0f}, {7, 50.0f}};  // ban the best; an id outside the vocabulary
  EXPECT_EQ(Sampler(p, 4).sample(lg, {}), 2);
  p.temperature = 1.0f;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.logit_bias = {{3, 100.0f}};
  Sampler s(p, 4);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(lg, {}), 3);
}

TEST(Sampling, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  std::vector<float> lg(100);
  for (int i = 0; i < 100; ++i) lg[i] = std::sin(i * 0.37f);
  auto draws = [&](uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.5f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    Sampler s(p, 100);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(lg.data(), out));
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(StopMatcher, StopStringSplitAcrossTokensIsNeverPrinted) {
  StopMatcher m({"</answer>"});
  std::string out;
  for (const char* piece : {"The sum is 5", "</an", "swer> trailing"}) out += m.push(piece);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out, "The sum is 5");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HeldBackTextIsReleasedWhenItIsNotAStop) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("abc ST"), "abc ");
  EXPECT_EQ(m.push("ART"), "START");
  EXPECT_EQ(m.push("x S"), "x ");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "S");
}

TEST(StopMatcher, MultiByteCharactersAndEarliestOfSeveralStops) {
  StopMatcher m({"ü!", "\n\n"});
  std::string out = m.push("grün");  // "ü" could start "ü!" only at the end
  out += m.push("e Wiese ü");
  out += m.push("!");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out, "grüne Wiese ");
}

}  // namespace
}  // namespace smoe
