#include "model/plan.hpp"

namespace ellm {

template <class T>
ModelPlan<T> plan_model(const ModelConfig& m, int max_batch, const TensorParallel<T>& tensor_parallel) {
  const TpShard tp = tensor_parallel.shard;
  // Rows of the residual stream this rank keeps: all N, or its 1/tp under sequence parallelism,
  // which also keeps the gathered (N,C) inputs of the column-parallel layers for backward.
  const int C = m.d_model, F = m.d_ff, Fin = fc_in_width(m), N = max_batch * m.seq_len;
  const bool sp = tensor_parallel.sequence_parallel();
  const int R = sp ? N / tp.size : N;
  const int V = m.vocab_size, F_local = F / tp.size, Fin_local = Fin / tp.size;
  const Shard vocab = tp.along(0, {{0, V}});
  const Shard ff_cols = tp.along(1, {{0, F}});  // row-parallel MLP output: this rank's inputs
  // column-parallel MLP input: this rank's rows of each branch (SwiGLU: gate and up)
  const Shard ff_rows = Fin == F ? tp.along(0, {{0, F}}) : tp.along(0, {{0, F}, {F, F}});
  const bool has_bias_norm = m.norm == Norm::LayerNorm;
  ModelPlan<T> plan;
  ArenaLayout& pa = plan.params.arena;
  ArenaLayout& aa = plan.acts.arena;
  ParamLayout& p = plan.params;
  ActLayout& act = plan.acts;

  p.wte = pa.add("wte", {V, C}, true, -1, vocab);
  p.wpe = m.positions == Positions::Learned ? pa.add("wpe", {m.seq_len, C}, true) : kAbsent;
  act.encoded = aa.add("encoded", {R, C});
  for (int l = 0; l < m.n_layers; l++) {
    const std::string pre = "h." + std::to_string(l) + ".";
    BlockParams b;
    BlockActs ba;
    b.ln1_w = pa.add(pre + "ln1.w", {C}, false, l);
    b.ln1_b = has_bias_norm ? pa.add(pre + "ln1.b", {C}, false, l) : kAbsent;
    ba.ln1 = aa.add(pre + "ln1", {R, C}, false, l);
    ba.ln1_mean = aa.add(pre + "ln1_mean", {R}, false, l);
    ba.ln1_rstd = aa.add(pre + "ln1_rstd", {R}, false, l);
    ba.ln1_full = sp ? aa.add(pre + "ln1_full", {N, C}, false, l) : ba.ln1;
    plan.mixers.push_back(make_mixer<T>(m, l, max_batch, pa, aa, tensor_parallel));
    const int width = plan.mixers.back()->width();  // this rank's heads
    b.attn_out_w = pa.add(pre + "attn.out.w", {C, width * tp.size}, true, l,
                          tp.along(1, {{0, width * tp.size}}));
    b.attn_out_b = pa.add(pre + "attn.out.b", {C}, false, l);
    ba.atty = aa.add(pre + "atty", {N, width}, false, l);
    ba.res2 = aa.add(pre + "res2", {R, C}, false, l);
    b.ln2_w = pa.add(pre + "ln2.w", {C}, false, l);
    b.ln2_b = has_bias_norm ? pa.add(pre + "ln2.b", {C}, false, l) : kAbsent;
    ba.ln2 = aa.add(pre + "ln2", {R, C}, false, l);
    ba.ln2_mean = aa.add(pre + "ln2_mean", {R}, false, l);
    ba.ln2_rstd = aa.add(pre + "ln2_rstd", {R}, false, l);
    ba.ln2_full = sp ? aa.add(pre + "ln2_full", {N, C}, false, l) : ba.ln2;
    b.fc_w = pa.add(pre + "mlp.fc.w", {Fin, C}, true, l, ff_rows);
    b.fc_b = pa.add(pre + "mlp.fc.b", {Fin}, false, l, ff_rows);
    b.fc_out_w = pa.add(pre + "mlp.out.w", {C, F}, true, l, ff_cols);
    b.fc_out_b = pa.add(pre + "mlp.out.b", {C}, false, l);
    ba.fch = aa.add(pre + "fch", {N, Fin_local}, false, l);
    ba.fch_act = aa.add(pre + "fch_act", {N, F_local}, false, l);
    ba.res3 = aa.add(pre + "res3", {R, C}, false, l);
    p.blocks.push_back(b);
    act.blocks.push_back(ba);
  }
  p.lnf_w = pa.add("lnf.w", {C}, false, m.n_layers);
  p.lnf_b = has_bias_norm ? pa.add("lnf.b", {C}, false, m.n_layers) : kAbsent;
  act.lnf = aa.add("lnf", {R, C});
  act.lnf_mean = aa.add("lnf_mean", {R});
  act.lnf_rstd = aa.add("lnf_rstd", {R});
  act.lnf_full = sp ? aa.add("lnf_full", {N, C}) : act.lnf;
  act.logits = aa.add("logits", {N, V / tp.size});  // this rank's vocabulary slice
  act.losses = aa.add("losses", {N});
  return plan;
}

template ModelPlan<float> plan_model<float>(const ModelConfig&, int, const TensorParallel<float>&);
template ModelPlan<double> plan_model<double>(const ModelConfig&, int, const TensorParallel<double>&);

ParamLayout make_param_layout(const ModelConfig& m) { return plan_model<float>(m, 1).params; }

}  // namespace ellm
