// Perplexity and KL divergence of a model on a text, computed as llama-perplexity computes them
// (see smoe/analysis.h), so that the numbers sit beside the ones its users publish.
#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "engine/logprob_file.h"
#include "engine/logprobs.h"
#include "smoe/analysis.h"

namespace smoe {
namespace {

// Evaluates tokens[start, start + len) from an empty cache (the first replaced by bos when ≥ 0)
// and returns the logits of positions [first, last).
const float* eval_chunk(Context& ctx, const std::vector<int32_t>& tokens, size_t start, int64_t len,
                        int32_t bos, int64_t first, int64_t last) {
  std::vector<BatchToken> batch;
  batch.reserve(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) {
    const int32_t t = i == 0 && bos >= 0 ? bos : tokens[start + static_cast<size_t>(i)];
    batch.push_back({t, i, 0, i >= first && i < last});
  }
  ctx.clear(0);
  return ctx.decode(batch);
}

// A mean and its standard error from the sums of x and x² over n values (none under 11 values).
Estimate mean_error(double sum, double sum2, int64_t n) {
  if (n < 1) return {};
  const double m = sum / static_cast<double>(n);
  const double var = sum2 / static_cast<double>(n) - m * m;
  return {m, var > 0 && n > 10 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0};
}

// The covariance of the means of two per-token series (0 under 10 values).
double mean_covariance(double sa, double sb, double sab, int64_t n) {
  if (n < 10) return 0;
  const double d = static_cast<double>(n);
  return (sab / d - (sa / d) * (sb / d)) / (d - 1);
}

PerplexityResult score_all_tokens(Context& ctx, const std::vector<int32_t>& tokens,
                                  const PerplexityOptions& o, int64_t chunk) {
  PerplexityResult r;
  double sum = 0, sum2 = 0;
  for (size_t b = 0; b + 1 < tokens.size(); b += static_cast<size_t>(chunk)) {
    const int64_t len = std::min<int64_t>(chunk, static_cast<int64_t>(tokens.size() - b));
    if (len < 2 || (o.max_chunks > 0 && r.n_chunks == o.max_chunks)) break;
    const float* lg = eval_chunk(ctx, tokens, b, len, -1, 0, len - 1);
    for (int64_t i = 0; i + 1 < len; ++i) {
      const double v = -log_softmax_at(lg + i * ctx.n_vocab(), ctx.n_vocab(), tokens[b + i + 1]);
      sum += v;
      sum2 += v * v;
      ++r.n_scored;
    }
    ++r.n_chunks;
    if (o.on_chunk) o.on_chunk(r.n_chunks, std::exp(sum / static_cast<double>(r.n_scored)));
  }
  const Estimate e = mean_error(sum, sum2, r.n_scored);
  r.nll = e.value;
  r.perplexity = std::exp(r.nll);
  r.error = r.perplexity * e.error;
  return r;
}

}  // namespace

PerplexityResult perplexity(Context& ctx, std::vector<int32_t> tokens, const PerplexityOptions& o) {
  const int64_t n_ctx = o.n_ctx;
  if (n_ctx < 4) fail("perplexity needs chunks of at least 4 tokens, got {}", n_ctx);
  if (n_ctx > ctx.n_ctx())
    fail("chunks of {} tokens do not fit the context of {}", n_ctx, ctx.n_ctx());
  const int64_t vocab = ctx.n_vocab();
  for (int32_t t : tokens)
    if (t < 0 || t >= vocab) fail("token {} is outside the vocabulary of {}", t, vocab);
  if (o.all_tokens) {
    if (!o.save_base.empty()) fail("a KL-divergence base is written by the default measure only");
    if (tokens.size() < 2) fail("perplexity needs at least 2 tokens");
    return score_all_tokens(ctx, tokens, o, n_ctx);
  }
  if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx)
    fail(
        "the text has {} tokens; perplexity with chunks of {} needs at least {} (2 chunks): give "
        "a longer text or a smaller --ctx-size",
        tokens.size(), n_ctx, 2 * n_ctx);
  int64_t n_chunk = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks > 0) n_chunk = std::min(n_chunk, o.max_chunks);
  const int64_t first = n_ctx / 2, per_chunk = n_ctx - 1 - first;

  LogprobHeader h;
  std::unique_ptr<LogprobWriter> base;
  std::vector<uint16_t> rows;
  if (!o.save_base.empty()) {
    h.n_ctx = static_cast<uint32_t>(n_ctx);
    h.n_vocab = static_cast<int32_t>(vocab);
    h.n_chunk = static_cast<int32_t>(n_chunk);
    h.tokens.assign(tokens.begin(), tokens.begin() + n_chunk * n_ctx);
    base = std::make_unique<LogprobWriter>(o.save_base, h);
    rows.resize(static_cast<size_t>(per_chunk * h.row_words()));
  }
  PerplexityResult r;
  double sum = 0, sum2 = 0;
  for (int64_t c = 0; c < n_chunk; ++c) {
    const size_t start = static_cast<size_t>(c * n_ctx);
    const float* lg = eval_chunk(ctx, tokens, start, n_ctx, o.bos, first, n_ctx - 1);
    for (int64_t i = 0; i < per_chunk; ++i) {
      const float* row = lg + i * vocab;
      const int32_t next = tokens[start + static_cast<size_t>(first + i + 1)];
      const double v = base ? encode_logprob_row(row, static_cast<int32_t>(vocab), next,
                                                 rows.data() + i * h.row_words())
                            : -log_softmax_at(row, vocab, next);
      sum += v;
      sum2 += v * v;
    }
    if (base) base->write_rows(rows.data(), static_cast<int64_t>(rows.size()));
    r.n_scored += per_chunk;
    r.n_chunks = c + 1;
    if (o.on_chunk) o.on_chunk(r.n_chunks, std::exp(sum / static_cast<double>(r.n_scored)));
  }
  if (base) base->close();
  const Estimate e = mean_error(sum, sum2, r.n_scored);
  r.nll = e.value;
  r.perplexity = std::exp(r.nll);
  r.error = r.perplexity * e.error;
  return r;
}

KlBaseInfo kl_base_info(const std::string& path) {
  const LogprobReader in(path);
  return {in.header().n_ctx, in.header().n_vocab, in.header().n_chunk};
}

double percentile(const std::vector<float>& v, double fraction) {
  if (v.empty()) return 0;
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  const double p = fraction * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(p);
  const double f = p - static_cast<double>(i);
  return (1 - f) * v[i] + f * v[std::min(i + 1, v.size() - 1)];
}

namespace {

// Running sums of a KL-divergence measurement.
struct KlSums {
  double nll = 0, nll2 = 0, base = 0, base2 = 0, nll_base = 0, kld = 0, kld2 = 0;
  double pd = 0, pd2 = 0, pd4 = 0;
  int64_t same_top = 0, count = 0;

  // One token: the model's logits, the base's log-probabilities, the next token. Returns (KL, Δp).
  std::pair<float, float> add(const float* lg, const float* logp_base, int64_t vocab, int32_t tok) {
    const int64_t top = std::max_element(lg, lg + vocab) - lg;
    const float mx = lg[top];
    double s = 0;
    for (int64_t v = 0; v < vocab; ++v) s += std::exp(static_cast<double>(lg[v] - mx));
    const double lse = mx + std::log(s);  // log Σ exp(logits)
    const double n = lse - lg[tok], nb = -static_cast<double>(logp_base[tok]);
    double kl = 0;
    for (int64_t v = 0; v < vocab; ++v)  // base probabilities under e^-16 are not resolved
      if (logp_base[v] > -16.0f)
        kl += std::exp(static_cast<double>(logp_base[v])) * (logp_base[v] - (lg[v] - lse));
    const double dp = std::exp(-n) - std::exp(-nb);
    nll += n;
    nll2 += n * n;
    base += nb;
    base2 += nb * nb;
    nll_base += n * nb;
    kld += kl;
    kld2 += kl * kl;
    pd += dp;
    pd2 += dp * dp;
    pd4 += dp * dp * dp * dp;
    same_top += std::max_element(logp_base, logp_base + vocab) - logp_base == top;
    ++count;
    return {static_cast<float>(kl), static_cast<float>(dp)};
  }

  KlStats stats() const {
    KlStats s;
    s.count = count;
    const Estimate lp = mean_error(nll, nll2, count), lb = mean_error(base, base2, count);
    const double cov = mean_covariance(nll, base, nll_base, count);
    s.ppl = {std::exp(lp.value), std::exp(lp.value) * lp.error};
    s.ppl_base = {std::exp(lb.value), std::exp(lb.value) * lb.error};
    s.log_ppl_correlation = lp.error > 0 && lb.error > 0 ? cov / (lp.error * lb.error) : 0;
    const double ratio_err =
        std::sqrt(std::max(0.0, lp.error * lp.error + lb.error * lb.error - 2 * cov));
    s.log_ppl_ratio = {lp.value - lb.value, ratio_err};
    s.ppl_ratio = {std::exp(lp.value - lb.value), std::exp(lp.value - lb.value) * ratio_err};
    const double ppl_cov = s.ppl.value * s.ppl_base.value * cov;
    s.ppl_diff = {s.ppl.value - s.ppl_base.value,
                  std::sqrt(std::max(0.0, s.ppl.error * s.ppl.error +
                                              s.ppl_base.error * s.ppl_base.error - 2 * ppl_cov))};
    s.kld = mean_error(kld, kld2, count);
    s.p_diff = mean_error(pd, pd2, count);
    const Estimate mse = mean_error(pd2, pd4, count);
    const double rms = std::sqrt(mse.value);
    s.rms_p_diff = {rms, rms > 0 ? 0.5 / rms * mse.error : 0};
    const double top = count ? static_cast<double>(same_top) / static_cast<double>(count) : 0;
    s.same_top = {top, count > 1 ? std::sqrt(top * (1 - top) / static_cast<double>(count - 1)) : 0};
    return s;
  }
};

}  // namespace

KlStats kl_divergence(Context& ctx, const KlOptions& o,
                      const std::function<void(const KlStats&)>& on_chunk) {
  LogprobReader in(o.base);
  const LogprobHeader& h = in.header();
  const int64_t vocab = ctx.n_vocab(), n_ctx = h.n_ctx;
  if (h.n_vocab != vocab)
    fail("'{}' holds log-probabilities over {} tokens; this model's vocabulary has {}", o.base,
         h.n_vocab, vocab);
  if (n_ctx > ctx.n_ctx())
    fail("'{}' was computed with chunks of {} tokens, more than the context of {}: raise -c",
         o.base, n_ctx, ctx.n_ctx());
  int64_t n_chunk = h.n_chunk;
  if (o.max_chunks > 0) n_chunk = std::min(n_chunk, o.max_chunks);
  const int64_t first = n_ctx / 2, per_chunk = h.scored_per_chunk();
  KlSums sums;
  KlStats out;
  std::vector<uint16_t> rows;
  std::vector<float> logp(static_cast<size_t>(vocab));
  for (int64_t c = 0; c < n_chunk; ++c) {
    in.read_chunk(rows);
    const size_t start = static_cast<size_t>(c * n_ctx);
    const float* lg = eval_chunk(ctx, h.tokens, start, n_ctx, o.bos, first, n_ctx - 1);
    for (int64_t i = 0; i < per_chunk; ++i) {
      decode_logprob_row(rows.data() + i * h.row_words(), h.n_vocab, logp.data());
      const auto [kl, dp] = sums.add(lg + i * vocab, logp.data(), vocab,
                                     h.tokens[start + static_cast<size_t>(first + i + 1)]);
      out.kld_values.push_back(kl);
      out.p_diff_values.push_back(dp);
    }
    if (on_chunk) {
      KlStats running = sums.stats();
      running.n_chunks = c + 1;
      on_chunk(running);
    }
  }
  KlStats s = sums.stats();
  s.n_chunks = n_chunk;
  s.kld_values = std::move(out.kld_values);
  s.p_diff_values = std::move(out.p_diff_values);
  std::sort(s.kld_values.begin(), s.kld_values.end());
  std::sort(s.p_diff_values.begin(), s.p_diff_values.end());
  return s;
}

}  // namespace smoe
