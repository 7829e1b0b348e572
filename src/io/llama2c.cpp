#include "io/llama2c.h"

#include <cstring>

#include "core/error.h"

namespace smoe {

std::unique_ptr<Llama2cSource> Llama2cSource::open(const std::string& path,
                                                   const LoadOptions& opts) {
  std::unique_ptr<Llama2cSource> s(new Llama2cSource());
  s->file_ = MappedFile::open(path, opts);
  s->add_mapped_file(s->file_.get());
  const MappedFile& f = *s->file_;
  if (f.size() < 28) fail("{}: too short for a llama2.c checkpoint ({} bytes)", path, f.size());
  int32_t h[7];
  std::memcpy(h, f.data(), sizeof h);
  Llama2cHeader& hd = s->header_;
  hd = {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[5] > 0};
  const int64_t vocab = hd.vocab_size < 0 ? -static_cast<int64_t>(hd.vocab_size) : hd.vocab_size;
  if (hd.dim <= 0 || hd.hidden_dim <= 0 || hd.n_layers <= 0 || hd.n_heads <= 0 ||
      hd.n_kv_heads <= 0 || vocab <= 0 || hd.seq_len <= 0 || hd.dim % hd.n_heads != 0 ||
      hd.n_heads % hd.n_kv_heads != 0 || hd.dim > (1 << 16) || hd.hidden_dim > (1 << 18) ||
      hd.n_layers > 1024 || vocab > (1 << 20) || hd.seq_len > (1 << 24))
    fail(
        "{}: not a llama2.c checkpoint (header dim={} hidden={} layers={} heads={} kv_heads={} "
        "vocab={} seq_len={})",
        path, hd.dim, hd.hidden_dim, hd.n_layers, hd.n_heads, hd.n_kv_heads, hd.vocab_size,
        hd.seq_len);
  const int64_t dim = hd.dim, hid = hd.hidden_dim, L = hd.n_layers, hs = dim / hd.n_heads;
  const int64_t kv = hs * hd.n_kv_heads;
  // Element counts in file order.
  const int64_t counts[] = {vocab * dim,        L * dim,       L * dim * dim, L * kv * dim,
                            L * kv * dim,       L * dim * dim, L * dim,       L * hid * dim,
                            L * dim * hid,      L * hid * dim, dim,           hd.seq_len * hs / 2,
                            hd.seq_len * hs / 2};
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  const uint64_t shared_bytes = 28 + 4 * static_cast<uint64_t>(total);
  const uint64_t want = shared_bytes + (hd.shared_classifier ? 0 : 4 * uint64_t(vocab * dim));
  if (f.size() != want) {
    const uint64_t other = hd.shared_classifier ? want + 4 * uint64_t(vocab * dim) : shared_bytes;
    fail(
        "{}: size mismatch: a llama2.c checkpoint with this header ({} classifier) needs {} bytes, "
        "the file has {}{}",
        path, hd.shared_classifier ? "shared" : "separate", want, f.size(),
        f.size() == other ? " (it would fit the other classifier layout: is the sign of vocab_size "
                            "wrong?)"
                          : "");
  }
  const std::byte* p = f.data() + 28;
  std::vector<const std::byte*> at;
  for (int64_t c : counts) {
    at.push_back(p);
    p += 4 * c;
  }
  auto add = [&](const std::string& name, const std::byte* data, std::vector<int64_t> shape) {
    TensorView t;
    t.name = name;
    t.file = path;
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.data = data;
    t.file_offset = static_cast<uint64_t>(data - f.data());
    t.nbytes = static_cast<size_t>(t.numel()) * 4;
    s->add_tensor(std::move(t));
  };
  add("tok_embeddings.weight", at[0], {vocab, dim});
  for (int64_t l = 0; l < L; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".";
    add(pre + "attention_norm.weight", at[1] + 4 * l * dim, {dim});
    add(pre + "attention.wq.weight", at[2] + 4 * l * dim * dim, {dim, dim});
    add(pre + "attention.wk.weight", at[3] + 4 * l * kv * dim, {kv, dim});
    add(pre + "attention.wv.weight", at[4] + 4 * l * kv * dim, {kv, dim});
    add(pre + "attention.wo.weight", at[5] + 4 * l * dim * dim, {dim, dim});
    add(pre + "ffn_norm.weight", at[6] + 4 * l * dim, {dim});
    add(pre + "feed_forward.w1.weight", at[7] + 4 * l * hid * dim, {hid, dim});
    add(pre + "feed_forward.w2.weight", at[8] + 4 * l * dim * hid, {dim, hid});
    add(pre + "feed_forward.w3.weight", at[9] + 4 * l * hid * dim, {hid, dim});
  }
  add("norm.weight", at[10], {dim});
  add("output.weight", hd.shared_classifier ? at[0] : p, {vocab, dim});
  return s;
}

std::string Llama2cSource::description() const {
  return fmt::format("llama2.c checkpoint {} ({} layers, dim {}, vocab {}, {} classifier)",
                     file_->path(), header_.n_layers, header_.dim,
                     header_.vocab_size < 0 ? -int64_t{header_.vocab_size} : header_.vocab_size,
                     header_.shared_classifier ? "shared" : "separate");
}

}  // namespace smoe
