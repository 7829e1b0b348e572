#include "model/tensor_names.h"

#include <fmt/format.h>

namespace smoe {
namespace {

std::string gguf_name(WeightRole r, int l, int e) {
  switch (r) {
    case WeightRole::TokEmbd:
      return "token_embd.weight";
    case WeightRole::OutputNorm:
      return "output_norm.weight";
    case WeightRole::Output:
      return "output.weight";
    case WeightRole::AttnNorm:
      return fmt::format("blk.{}.attn_norm.weight", l);
    case WeightRole::Wq:
      return fmt::format("blk.{}.attn_q.weight", l);
    case WeightRole::Wk:
      return fmt::format("blk.{}.attn_k.weight", l);
    case WeightRole::Wv:
      return fmt::format("blk.{}.attn_v.weight", l);
    case WeightRole::Wo:
      return fmt::format("blk.{}.attn_output.weight", l);
    case WeightRole::FfnNorm:
      return fmt::format("blk.{}.ffn_norm.weight", l);
    case WeightRole::Router:
      return fmt::format("blk.{}.ffn_gate_inp.weight", l);
    case WeightRole::ExpertGate:
      return fmt::format("blk.{}.ffn_gate.{}.weight", l, e);
    case WeightRole::ExpertUp:
      return fmt::format("blk.{}.ffn_up.{}.weight", l, e);
    case WeightRole::ExpertDown:
      return fmt::format("blk.{}.ffn_down.{}.weight", l, e);
    case WeightRole::MergedGate:
      return fmt::format("blk.{}.ffn_gate_exps.weight", l);
    case WeightRole::MergedUp:
      return fmt::format("blk.{}.ffn_up_exps.weight", l);
    case WeightRole::MergedDown:
      return fmt::format("blk.{}.ffn_down_exps.weight", l);
    case WeightRole::DenseGate:
      return fmt::format("blk.{}.ffn_gate.weight", l);
    case WeightRole::DenseUp:
      return fmt::format("blk.{}.ffn_up.weight", l);
    case WeightRole::DenseDown:
      return fmt::format("blk.{}.ffn_down.weight", l);
  }
  return {};
}

std::string hf_name(WeightRole r, int l, int e) {
  switch (r) {
    case WeightRole::TokEmbd:
      return "model.embed_tokens.weight";
    case WeightRole::OutputNorm:
      return "model.norm.weight";
    case WeightRole::Output:
      return "lm_head.weight";
    case WeightRole::AttnNorm:
      return fmt::format("model.layers.{}.input_layernorm.weight", l);
    case WeightRole::Wq:
      return fmt::format("model.layers.{}.self_attn.q_proj.weight", l);
    case WeightRole::Wk:
      return fmt::format("model.layers.{}.self_attn.k_proj.weight", l);
    case WeightRole::Wv:
      return fmt::format("model.layers.{}.self_attn.v_proj.weight", l);
    case WeightRole::Wo:
      return fmt::format("model.layers.{}.self_attn.o_proj.weight", l);
    case WeightRole::FfnNorm:
      return fmt::format("model.layers.{}.post_attention_layernorm.weight", l);
    case WeightRole::Router:
      return fmt::format("model.layers.{}.block_sparse_moe.gate.weight", l);
    case WeightRole::ExpertGate:
      return fmt::format("model.layers.{}.block_sparse_moe.experts.{}.w1.weight", l, e);
    case WeightRole::ExpertUp:
      return fmt::format("model.layers.{}.block_sparse_moe.experts.{}.w3.weight", l, e);
    case WeightRole::ExpertDown:
      return fmt::format("model.layers.{}.block_sparse_moe.experts.{}.w2.weight", l, e);
    case WeightRole::DenseGate:
      return fmt::format("model.layers.{}.mlp.gate_proj.weight", l);
    case WeightRole::DenseUp:
      return fmt::format("model.layers.{}.mlp.up_proj.weight", l);
    case WeightRole::DenseDown:
      return fmt::format("model.layers.{}.mlp.down_proj.weight", l);
    default:
      return {};
  }
}

std::string mistral_name(WeightRole r, int l, int e) {
  switch (r) {
    case WeightRole::TokEmbd:
      return "tok_embeddings.weight";
    case WeightRole::OutputNorm:
      return "norm.weight";
    case WeightRole::Output:
      return "output.weight";
    case WeightRole::AttnNorm:
      return fmt::format("layers.{}.attention_norm.weight", l);
    case WeightRole::Wq:
      return fmt::format("layers.{}.attention.wq.weight", l);
    case WeightRole::Wk:
      return fmt::format("layers.{}.attention.wk.weight", l);
    case WeightRole::Wv:
      return fmt::format("layers.{}.attention.wv.weight", l);
    case WeightRole::Wo:
      return fmt::format("layers.{}.attention.wo.weight", l);
    case WeightRole::FfnNorm:
      return fmt::format("layers.{}.ffn_norm.weight", l);
    case WeightRole::Router:
      return fmt::format("layers.{}.feed_forward.gate.weight", l);
    case WeightRole::ExpertGate:
      return fmt::format("layers.{}.feed_forward.experts.{}.w1.weight", l, e);
    case WeightRole::ExpertUp:
      return fmt::format("layers.{}.feed_forward.experts.{}.w3.weight", l, e);
    case WeightRole::ExpertDown:
      return fmt::format("layers.{}.feed_forward.experts.{}.w2.weight", l, e);
    case WeightRole::DenseGate:
      return fmt::format("layers.{}.feed_forward.w1.weight", l);
    case WeightRole::DenseUp:
      return fmt::format("layers.{}.feed_forward.w3.weight", l);
    case WeightRole::DenseDown:
      return fmt::format("layers.{}.feed_forward.w2.weight", l);
    default:
      return {};
  }
}

}  // namespace

std::string tensor_name(NameScheme s, WeightRole r, int layer, int expert) {
  switch (s) {
    case NameScheme::Gguf:
      return gguf_name(r, layer, expert);
    case NameScheme::HuggingFace:
      return hf_name(r, layer, expert);
    case NameScheme::Mistral:
      return mistral_name(r, layer, expert);
  }
  return {};
}

const char* scheme_name(NameScheme s) {
  switch (s) {
    case NameScheme::Gguf:
      return "GGUF";
    case NameScheme::HuggingFace:
      return "Hugging Face";
    case NameScheme::Mistral:
      return "Mistral";
  }
  return "?";
}

}  // namespace smoe
