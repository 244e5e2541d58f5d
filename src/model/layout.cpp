#include "model/layout.hpp"

#include <functional>
#include <numeric>

namespace ellm {

std::size_t ArenaLayout::add(const std::string& name, std::vector<int> shape, bool decay, int layer) {
  const std::size_t numel =
      std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
  tensors_.push_back({name, std::move(shape), total_, numel, decay, layer});
  total_ += numel;
  return tensors_.back().offset;
}

int fc_in_width(const ModelConfig& m) {
  return m.activation == Activation::SwiGLU ? 2 * m.d_ff : m.d_ff;
}

ParamLayout make_param_layout(const ModelConfig& m) {
  const int C = m.d_model, F = m.d_ff, Fin = fc_in_width(m);
  const bool has_bias_norm = m.norm == Norm::LayerNorm;
  ParamLayout p;
  ArenaLayout& a = p.arena;
  p.wte = a.add("wte", {m.vocab_size, C}, true);
  p.wpe = m.positions == Positions::Learned ? a.add("wpe", {m.seq_len, C}, true) : kAbsent;
  for (int l = 0; l < m.n_layers; l++) {
    const std::string pre = "h." + std::to_string(l) + ".";
    BlockParams b;
    b.ln1_w = a.add(pre + "ln1.w", {C}, false, l);
    b.ln1_b = has_bias_norm ? a.add(pre + "ln1.b", {C}, false, l) : kAbsent;
    b.qkv_w = a.add(pre + "attn.qkv.w", {3 * C, C}, true, l);
    b.qkv_b = a.add(pre + "attn.qkv.b", {3 * C}, false, l);
    b.attn_out_w = a.add(pre + "attn.out.w", {C, C}, true, l);
    b.attn_out_b = a.add(pre + "attn.out.b", {C}, false, l);
    b.ln2_w = a.add(pre + "ln2.w", {C}, false, l);
    b.ln2_b = has_bias_norm ? a.add(pre + "ln2.b", {C}, false, l) : kAbsent;
    b.fc_w = a.add(pre + "mlp.fc.w", {Fin, C}, true, l);
    b.fc_b = a.add(pre + "mlp.fc.b", {Fin}, false, l);
    b.fc_out_w = a.add(pre + "mlp.out.w", {C, F}, true, l);
    b.fc_out_b = a.add(pre + "mlp.out.b", {C}, false, l);
    p.blocks.push_back(b);
  }
  p.lnf_w = a.add("lnf.w", {C});
  p.lnf_b = has_bias_norm ? a.add("lnf.b", {C}) : kAbsent;
  return p;
}

ActLayout make_act_layout(const ModelConfig& m, int B) {
  const int T = m.seq_len, C = m.d_model, N = B * T;
  ActLayout act;
  ArenaLayout& a = act.arena;
  act.encoded = a.add("encoded", {N, C});
  for (int l = 0; l < m.n_layers; l++) {
    const std::string pre = "h." + std::to_string(l) + ".";
    BlockActs b;
    b.ln1 = a.add(pre + "ln1", {N, C}, false, l);
    b.ln1_mean = a.add(pre + "ln1_mean", {N}, false, l);
    b.ln1_rstd = a.add(pre + "ln1_rstd", {N}, false, l);
    b.qkv = a.add(pre + "qkv", {N, 3 * C}, false, l);
    b.atty = a.add(pre + "atty", {N, C}, false, l);
    b.lse = a.add(pre + "lse", {B, m.n_heads, T}, false, l);
    b.res2 = a.add(pre + "res2", {N, C}, false, l);
    b.ln2 = a.add(pre + "ln2", {N, C}, false, l);
    b.ln2_mean = a.add(pre + "ln2_mean", {N}, false, l);
    b.ln2_rstd = a.add(pre + "ln2_rstd", {N}, false, l);
    b.fch = a.add(pre + "fch", {N, fc_in_width(m)}, false, l);
    b.fch_act = a.add(pre + "fch_act", {N, m.d_ff}, false, l);
    b.res3 = a.add(pre + "res3", {N, C}, false, l);
    act.blocks.push_back(b);
  }
  act.lnf = a.add("lnf", {N, C});
  act.lnf_mean = a.add("lnf_mean", {N});
  act.lnf_rstd = a.add("lnf_rstd", {N});
  act.logits = a.add("logits", {N, m.vocab_size});
  act.losses = a.add("losses", {N});
  return act;
}

}  // namespace ellm
