#include "model/plan.hpp"

namespace ellm {

namespace {

// One pass of declarations; trainable_total splits the parameter arena (ArenaLayout).
template <class T>
ModelPlan<T> lay_out(const ModelConfig& m, int max_batch, const TensorParallel<T>& tp,
                     std::size_t trainable_total) {
  const int C = m.d_model, V = m.vocab_size, N = max_batch * m.seq_len;
  const FinetuneConfig& f = m.finetune;
  ModelPlan<T> plan;
  plan.params = ArenaLayout(trainable_total);
  plan.stream = std::make_unique<ResidualStream<T>>(tp, m.seq_len, C);
  const ResidualStream<T>& stream = *plan.stream;
  const int R = stream.rows(max_batch);
  const bool sp = stream.sequence_parallel();
  const Declarer top{plan.params, plan.acts, "", -1, !f.trains_base(-1, m.n_layers)};

  plan.wte = top.param(weight("wte", {V, C}, Init::normal(m.init_std)).sharded(tp.shard.along(0, {{0, V}})));
  if (m.positions == Positions::Learned) {
    plan.wpe = top.param(weight("wpe", {m.seq_len, C}, Init::normal(m.init_std)));
  }
  plan.encoded = top.buffer("encoded", {R, C});
  for (int l = 0; l < m.n_layers; l++) {
    const Declarer d{plan.params, plan.acts, "h." + std::to_string(l) + ".", l,
                     !f.trains_base(l, m.n_layers)};
    plan.blocks.push_back(std::make_unique<Block<T>>(m.layer(l), max_batch, d, stream));
  }
  const Declarer last{plan.params, plan.acts, "", m.n_layers, !f.trains_base(m.n_layers, m.n_layers)};
  plan.lnf.declare(last, "lnf", m, R, sp);
  if (!m.tie_embeddings) {
    plan.lm_head = last.param(weight("lm_head", {V, C}, Init::normal(m.init_std))
                                  .sharded(tp.shard.along(0, {{0, V}})));
  }
  plan.lnf_full = sp ? last.buffer("lnf_full", {N, C}) : plan.lnf.out;
  plan.logits = last.buffer("logits", {N, V / tp.shard.size});  // this rank's vocabulary slice
  plan.losses = last.buffer("losses", {N});
  return plan;
}

}  // namespace

// Two passes: the first counts the trainable elements, the second puts them first.
template <class T>
ModelPlan<T> plan_model(const ModelConfig& m, int max_batch, const TensorParallel<T>& tp) {
  const ModelPlan<T> counting = lay_out<T>(m, 1, tp, kAbsent);
  std::size_t trainable = 0;
  for (const TensorInfo& t : counting.params.tensors())
    if (t.trainable) trainable += t.numel;
  return lay_out<T>(m, max_batch, tp, trainable);
}

template ModelPlan<float> plan_model<float>(const ModelConfig&, int, const TensorParallel<float>&);
template ModelPlan<double> plan_model<double>(const ModelConfig&, int, const TensorParallel<double>&);

ArenaLayout make_param_layout(const ModelConfig& m) { return std::move(plan_model<float>(m, 1).params); }

}  // namespace ellm
