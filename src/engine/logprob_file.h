// The file of a KL-divergence measurement's base: the evaluated tokens and, for every scored
// token, the base model's log-probabilities over the whole vocabulary, 16 bits each. It is the
// file llama-perplexity writes with --kl-divergence-base, so that either program reads the
// other's:
//   "_logits_", u32 n_ctx, i32 n_vocab, i32 n_chunk, i32 tokens[n_chunk · n_ctx], then for each
//   chunk its n_ctx − 1 − n_ctx/2 scored positions, each a row of nv = 2·⌈n_vocab/2⌉ + 4 u16:
//   f32 scale, f32 min_log_prob, then q[v] for every token v (padding to nv), with
//   log p(v) = scale·q[v] + min_log_prob. Log-probabilities more than 16 below the largest are
//   stored as q = 0 (their probabilities, under 1.2e-7 of the top one, are not resolved).
// Written and read a chunk at a time: a 32k-vocabulary base of 100 chunks of 512 is 1.6 GB.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace smoe {

struct LogprobHeader {
  uint32_t n_ctx = 0;
  int32_t n_vocab = 0;
  int32_t n_chunk = 0;
  std::vector<int32_t> tokens;  // (n_chunk, n_ctx)

  int64_t scored_per_chunk() const { return n_ctx - 1 - n_ctx / 2; }
  int64_t row_words() const { return 2 * ((int64_t{n_vocab} + 1) / 2) + 4; }
};

// One row's encoding of `logits` (n_vocab of them) into `row` (row_words() u16). Returns the
// row's negative log-likelihood of token `tok`, computed from the floats, not the 16 bits.
double encode_logprob_row(const float* logits, int32_t n_vocab, int32_t tok, uint16_t* row);

// A stored row back as log-probabilities (n_vocab floats).
void decode_logprob_row(const uint16_t* row, int32_t n_vocab, float* logp);

class LogprobWriter {
 public:
  // Writes the header; throws smoe::Error naming the path when it cannot.
  LogprobWriter(const std::string& path, const LogprobHeader& h);
  // Appends rows (row_words() u16 each).
  void write_rows(const uint16_t* rows, int64_t n);
  void close();  // flushes; throws when the disk refused a write

 private:
  std::string path_;
  std::ofstream out_;
};

class LogprobReader {
 public:
  // Reads and checks the header; throws smoe::Error naming the path and what is wrong.
  explicit LogprobReader(const std::string& path);
  const LogprobHeader& header() const { return h_; }
  // The next chunk's rows (scored_per_chunk() · row_words() u16) into rows.
  void read_chunk(std::vector<uint16_t>& rows);

 private:
  std::string path_;
  std::ifstream in_;
  LogprobHeader h_;
  int32_t chunks_read_ = 0;
};

}  // namespace smoe
