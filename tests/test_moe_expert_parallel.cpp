// Expert parallelism at the model level, without MPI: ep ranks as threads of this process joined
// by in-memory exchanges (tests/support/thread_expert_group.hpp), in double precision. Each rank
// trains on its own batch, as data-parallel ranks do. Against the same model with every expert
// on every rank (ep = 1) run once per rank's batch: every rank's loss is the same, its non-expert
// gradients are the same, and its experts' gradients are the sum over the ranks' batches of the
// ep = 1 gradients of those experts (their tokens came from every rank).
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "model/gpt.hpp"
#include "support/thread_expert_group.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

ModelConfig moe_model(double capacity, bool swiglu) {
  ModelConfig m;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.d_ff = 12;
  m.seq_len = 6;
  m.positions = Positions::RoPE;
  m.activation = swiglu ? Activation::SwiGLU : Activation::GELU;
  ModelConfig routed = m;
  routed.mlp = ChannelMixerKind::MoE;
  routed.moe_experts = 4;
  routed.moe_top_k = 2;
  routed.moe_d_ff = 5;
  routed.moe_capacity_factor = capacity;
  routed.moe_z_coeff = 0.01;
  m.layers = {routed, routed};
  return m;
}

struct Case {
  ModelConfig model;
  int ep;
  bool idle_rank = false;  // router weights 0: every token goes to experts 0 and 1, on rank 0
};

class ExpertParallelModel : public ::testing::TestWithParam<Case> {};

TEST_P(ExpertParallelModel, EveryRankMatchesTheModelWithAllExperts) {
  const auto [m, ep, idle_rank] = GetParam();
  // Router weights 0 make every probability 1/E: top-2 ties go to experts 0 and 1, so with 2
  // experts per rank the other ranks' experts get nothing — and must still join every exchange.
  const auto init = [idle = idle_rank](GPT<double>& g) {
    g.init_params(3);
    if (!idle) return;
    for (const TensorInfo& t : g.param_layout().tensors()) {
      if (t.name.ends_with("router.w")) std::fill_n(g.params() + t.offset, t.numel, 0.0);
    }
  };
  const int B = 2;
  std::vector<std::vector<int>> tokens(ep), targets(ep);
  Rng rng(11);
  for (int r = 0; r < ep; r++) {
    for (int i = 0; i < B * m.seq_len; i++) {
      tokens[r].push_back(int(rng.below(m.vocab_size)));
      targets[r].push_back(int(rng.below(m.vocab_size)));
    }
  }
  std::vector<std::unique_ptr<GPT<double>>> whole(ep);  // ep = 1, one per rank's batch
  std::vector<double> whole_loss(ep);
  for (int r = 0; r < ep; r++) {
    whole[r] = std::make_unique<GPT<double>>(m, B);
    init(*whole[r]);
    whole_loss[r] = whole[r]->forward(tokens[r].data(), targets[r].data(), B) + whole[r]->aux_loss();
    whole[r]->backward();
  }
  testing::ThreadExpertGroup group(ep);
  std::vector<std::unique_ptr<GPT<double>>> ranks(ep);
  std::vector<double> losses(ep);
  std::vector<std::thread> threads;
  for (int r = 0; r < ep; r++) {
    threads.emplace_back([&, r] {
      TensorParallel<double> ctx;
      ctx.experts = group.member(r);
      ranks[r] = std::make_unique<GPT<double>>(m, B, ctx);
      init(*ranks[r]);
      losses[r] = ranks[r]->forward(tokens[r].data(), targets[r].data(), B) + ranks[r]->aux_loss();
      ranks[r]->backward();
    });
  }
  for (std::thread& t : threads) t.join();

  const auto& full = whole[0]->param_layout().tensors();
  for (int r = 0; r < ep; r++) {
    EXPECT_NEAR(losses[r], whole_loss[r], 1e-12) << "rank " << r;
    const auto& mine = ranks[r]->param_layout().tensors();
    ASSERT_EQ(mine.size(), full.size());
    for (std::size_t i = 0; i < mine.size(); i++) {
      const TensorInfo& t = mine[i];
      const bool expert = t.group == ReplicaGroup::ExpertDataParallel;
      EXPECT_EQ(expert, t.name.find(".experts.") != std::string::npos) << t.name;  // declared as such
      std::vector<double> want(t.numel, 0.0), part(t.numel);
      for (int s = 0; s < ep; s++) {  // experts: every rank's tokens; the rest: this rank's
        if (!expert && s != r) continue;
        extract_shard(whole[s]->grads() + full[i].offset, t, part.data());
        for (std::size_t k = 0; k < t.numel; k++) want[k] += part[k];
      }
      double worst = 0;
      for (std::size_t k = 0; k < t.numel; k++) {
        worst = std::max(worst, std::fabs(ranks[r]->grads()[t.offset + k] - want[k]));
      }
      EXPECT_LT(worst, 1e-11) << "rank " << r << " " << t.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, ExpertParallelModel,
                         ::testing::Values(Case{moe_model(0.0, false), 2}, Case{moe_model(0.0, true), 4},
                                           Case{moe_model(1.0, false), 2},
                                           Case{moe_model(0.0, false), 2, true}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return "ep" + std::to_string(i.param.ep) + "_" + std::to_string(i.index);
                         });

}  // namespace
}  // namespace ellm
