#include "engine/logprob_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace smoe {
namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr float kRange = 16.0f;  // log-probabilities kept below the top one

}  // namespace

double encode_logprob_row(const float* logits, int32_t n_vocab, int32_t tok, uint16_t* row) {
  const auto [lo, hi] = std::minmax_element(logits, logits + n_vocab);
  const float max_logit = *hi, min_logit = std::max(*lo, max_logit - kRange);
  double sum = 0;
  for (int32_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(logits[v] - max_logit));
  const double lse = std::log(sum);
  const float scale = (max_logit - min_logit) / 65535.0f;
  const float min_log_prob = static_cast<float>(min_logit - max_logit - lse);
  std::memcpy(row, &scale, 4);
  std::memcpy(row + 2, &min_log_prob, 4);
  uint16_t* q = row + 4;
  const int64_t words = 2 * ((int64_t{n_vocab} + 1) / 2);
  std::fill(q, q + words, uint16_t{0});
  if (scale > 0) {
    const float inv = 1.0f / scale;
    for (int32_t v = 0; v < n_vocab; ++v)
      if (logits[v] > min_logit)
        q[v] = static_cast<uint16_t>(std::min(65535L, std::lrintf(inv * (logits[v] - min_logit))));
  }
  return max_logit + lse - logits[tok];
}

void decode_logprob_row(const uint16_t* row, int32_t n_vocab, float* logp) {
  float scale, min_log_prob;
  std::memcpy(&scale, row, 4);
  std::memcpy(&min_log_prob, row + 2, 4);
  for (int32_t v = 0; v < n_vocab; ++v) logp[v] = scale * row[4 + v] + min_log_prob;
}

LogprobWriter::LogprobWriter(const std::string& path, const LogprobHeader& h)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) fail("cannot write '{}': {}", path, std::strerror(errno));
  out_.write(kMagic, 8);
  out_.write(reinterpret_cast<const char*>(&h.n_ctx), 4);
  out_.write(reinterpret_cast<const char*>(&h.n_vocab), 4);
  out_.write(reinterpret_cast<const char*>(&h.n_chunk), 4);
  out_.write(reinterpret_cast<const char*>(h.tokens.data()),
             static_cast<std::streamsize>(h.tokens.size() * 4));
  if (!out_) fail("cannot write '{}': {}", path, std::strerror(errno));
}

void LogprobWriter::write_rows(const uint16_t* rows, int64_t n) {
  out_.write(reinterpret_cast<const char*>(rows), static_cast<std::streamsize>(n * 2));
  if (!out_) fail("cannot write '{}' (disk full?): {}", path_, std::strerror(errno));
}

void LogprobWriter::close() {
  out_.close();
  if (!out_) fail("cannot finish writing '{}': {}", path_, std::strerror(errno));
}

LogprobReader::LogprobReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) fail("cannot open '{}': {}", path, std::strerror(errno));
  char magic[8] = {};
  in_.read(magic, 8);
  if (!in_ || std::memcmp(magic, kMagic, 8) != 0)
    fail(
        "'{}' is not a file of base log-probabilities (written by `smoe perplexity "
        "--kl-divergence-base` or llama-perplexity's)",
        path);
  in_.read(reinterpret_cast<char*>(&h_.n_ctx), 4);
  in_.read(reinterpret_cast<char*>(&h_.n_vocab), 4);
  in_.read(reinterpret_cast<char*>(&h_.n_chunk), 4);
  if (!in_ || h_.n_ctx < 4 || h_.n_ctx > (1u << 24) || h_.n_vocab < 2 || h_.n_chunk < 1 ||
      h_.n_vocab > (1 << 24) || h_.n_chunk > (1 << 24))
    fail("'{}': its header is damaged (context {}, vocabulary {}, {} chunks)", path, h_.n_ctx,
         h_.n_vocab, h_.n_chunk);
  h_.tokens.resize(static_cast<size_t>(h_.n_ctx) * static_cast<size_t>(h_.n_chunk));
  in_.read(reinterpret_cast<char*>(h_.tokens.data()),
           static_cast<std::streamsize>(h_.tokens.size() * 4));
  if (!in_) fail("'{}' ends inside its {} tokens", path, h_.tokens.size());
  for (int32_t t : h_.tokens)
    if (t < 0 || t >= h_.n_vocab)
      fail("'{}': token {} is outside its vocabulary of {}", path, t, h_.n_vocab);
}

void LogprobReader::read_chunk(std::vector<uint16_t>& rows) {
  if (chunks_read_ >= h_.n_chunk) fail("'{}' has only {} chunks", path_, h_.n_chunk);
  rows.resize(static_cast<size_t>(h_.scored_per_chunk() * h_.row_words()));
  in_.read(reinterpret_cast<char*>(rows.data()), static_cast<std::streamsize>(rows.size() * 2));
  if (!in_) fail("'{}' ends inside chunk {} of {}", path_, chunks_read_ + 1, h_.n_chunk);
  ++chunks_read_;
}

}  // namespace smoe
