// Test support: a WeightSource holding random tensors in memory under any naming scheme, so the
// model can be tested without files.
#pragma once

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "io/weight_source.h"
#include "model/config.h"
#include "model/tensor_names.h"

namespace smoe::test {

class MemorySource : public WeightSource {
 public:
  std::string description() const override { return "in-memory test model"; }

  void put(const std::string& name, DType dt, std::vector<int64_t> shape,
           const std::vector<float>& v) {
    auto& buf = bufs_.emplace_back();
    const size_t esz = dt == DType::F32 ? 4 : 2;
    buf.resize(v.size() * esz);
    for (size_t i = 0; i < v.size(); ++i) {
      if (dt == DType::F32) {
        std::memcpy(buf.data() + 4 * i, &v[i], 4);
      } else {
        const uint16_t h = dt == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
        std::memcpy(buf.data() + 2 * i, &h, 2);
      }
    }
    TensorView t;
    t.name = name;
    t.file = "memory";
    t.dtype = dt;
    t.shape = std::move(shape);
    t.data = buf.data();
    t.nbytes = buf.size();
    add_tensor(std::move(t));
  }
  void drop(const std::string& name) {
    for (auto it = tensors_.begin(); it != tensors_.end(); ++it)
      if (it->name == name) {
        tensors_.erase(it);
        break;
      }
    index_.clear();
    for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
  }

 private:
  std::vector<std::vector<std::byte>> bufs_;
};

inline ModelConfig tiny_mixtral() {
  ModelConfig c;
  c.architecture = "mixtral";
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.hidden_dim = 48;
  c.vocab_size = 50;
  c.n_experts = 4;
  c.n_experts_used = 2;
  c.rope_theta = 1e6f;
  c.max_context = 256;
  return c;
}

inline ModelConfig tiny_mistral(int64_t window) {
  ModelConfig c = tiny_mixtral();
  c.architecture = "mistral";
  c.n_experts = 0;
  c.n_experts_used = 0;
  c.rope_theta = 1e4f;
  c.sliding_window = window;
  return c;
}

// Canonical random weights (interleaved RoPE order) written under `scheme`'s names. For the
// HF scheme q and k are stored permuted for rotate-half RoPE, as HF checkpoints are.
inline std::shared_ptr<MemorySource> make_model(const ModelConfig& c, NameScheme scheme,
                                                uint32_t seed = 1, DType dt = DType::F32,
                                                bool merged_experts = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto rnd = [&](int64_t n, float scale, float mean = 0.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + scale * nd(rng);
    return v;
  };
  auto hf_permute = [&](const std::vector<float>& w, int64_t n_h, int64_t cols) {
    std::vector<float> out(w.size());
    const int64_t hd = c.head_dim;
    for (int64_t h = 0; h < n_h; ++h)
      for (int64_t j = 0; j < hd / 2; ++j)
        for (int64_t s = 0; s < 2; ++s)
          std::memcpy(&out[(h * hd + s * hd / 2 + j) * cols], &w[(h * hd + 2 * j + s) * cols],
                      cols * 4);
    return out;
  };
  auto src = std::make_shared<MemorySource>();
  auto name = [&](WeightRole r, int l = 0, int e = 0) { return tensor_name(scheme, r, l, e); };
  const int64_t d = c.dim, h = c.hidden_dim;
  src->put(name(WeightRole::TokEmbd), dt, {c.vocab_size, d}, rnd(c.vocab_size * d, 1.0f));
  src->put(name(WeightRole::OutputNorm), DType::F32, {d}, rnd(d, 0.1f, 1.0f));
  src->put(name(WeightRole::Output), dt, {c.vocab_size, d}, rnd(c.vocab_size * d, 0.2f));
  for (int l = 0; l < c.n_layers; ++l) {
    src->put(name(WeightRole::AttnNorm, l), DType::F32, {d}, rnd(d, 0.1f, 1.0f));
    auto wq = rnd(c.q_dim() * d, 0.3f), wk = rnd(c.kv_dim() * d, 0.3f);
    if (scheme == NameScheme::HuggingFace) {
      wq = hf_permute(wq, c.n_heads, d);
      wk = hf_permute(wk, c.n_kv_heads, d);
    }
    src->put(name(WeightRole::Wq, l), dt, {c.q_dim(), d}, wq);
    src->put(name(WeightRole::Wk, l), dt, {c.kv_dim(), d}, wk);
    src->put(name(WeightRole::Wv, l), dt, {c.kv_dim(), d}, rnd(c.kv_dim() * d, 0.3f));
    src->put(name(WeightRole::Wo, l), dt, {d, c.q_dim()}, rnd(d * c.q_dim(), 0.2f));
    src->put(name(WeightRole::FfnNorm, l), DType::F32, {d}, rnd(d, 0.1f, 1.0f));
    if (!c.is_moe()) {
      src->put(name(WeightRole::DenseGate, l), dt, {h, d}, rnd(h * d, 0.3f));
      src->put(name(WeightRole::DenseUp, l), dt, {h, d}, rnd(h * d, 0.3f));
      src->put(name(WeightRole::DenseDown, l), dt, {d, h}, rnd(d * h, 0.2f));
      continue;
    }
    const int64_t ne = c.n_experts;
    src->put(name(WeightRole::Router, l), DType::F32, {ne, d}, rnd(ne * d, 1.0f));
    std::vector<std::vector<float>> g, u, dn;
    for (int e = 0; e < ne; ++e) {
      g.push_back(rnd(h * d, 0.3f));
      u.push_back(rnd(h * d, 0.3f));
      dn.push_back(rnd(d * h, 0.2f));
    }
    if (scheme == NameScheme::Gguf && merged_experts) {
      auto cat = [](const std::vector<std::vector<float>>& parts) {
        std::vector<float> all;
        for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
        return all;
      };
      src->put(name(WeightRole::MergedGate, l), dt, {ne, h, d}, cat(g));
      src->put(name(WeightRole::MergedUp, l), dt, {ne, h, d}, cat(u));
      src->put(name(WeightRole::MergedDown, l), dt, {ne, d, h}, cat(dn));
      continue;
    }
    for (int e = 0; e < ne; ++e) {
      src->put(name(WeightRole::ExpertGate, l, e), dt, {h, d}, g[e]);
      src->put(name(WeightRole::ExpertUp, l, e), dt, {h, d}, u[e]);
      src->put(name(WeightRole::ExpertDown, l, e), dt, {d, h}, dn[e]);
    }
  }
  return src;
}

}  // namespace smoe::test
