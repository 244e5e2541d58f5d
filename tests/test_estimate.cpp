// The memory estimate (train/estimate.hpp) against what a run allocates: for each model kind and
// dp × tp × ep layout, every rank's estimated arenas equal the bytes of a GPT built with that rank's
// shard and of AdamW over what that rank updates; ZeRO-1's optimizer shares add up to the whole.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "metrics/flops.hpp"
#include "model/gpt.hpp"
#include "train/estimate.hpp"
#include "train/optimizer.hpp"

namespace ellm {
namespace {

struct Kind {
  std::string name;
  std::function<void(ModelConfig&)> edit;
};

struct Case {
  Kind kind;
  int dp, tp, ep;
  bool zero1 = false, sequence = false;
};

RunConfig make_run(const Case& c) {
  RunConfig run;
  run.name = c.kind.name;
  ModelConfig& m = run.model;
  m.n_layers = 2, m.d_model = 64, m.n_heads = 4, m.d_ff = 128, m.seq_len = 16;
  c.kind.edit(m);
  run.training.batch_size = 4;
  run.parallel.dp = c.dp, run.parallel.tp = c.tp, run.parallel.ep = c.ep;
  run.parallel.zero1 = c.zero1;
  run.parallel.sequence_parallel = c.sequence;
  run.parallel.bucket_mib = 0.01;  // several buckets, so ZeRO-1 cuts each
  return run;
}

class Estimate : public ::testing::TestWithParam<Case> {};

// Each rank's arenas as the model and the optimizer allocate them (GPT's own buffers; AdamW over
// the whole arena, which keeps moments for the trainable tensors only).
TEST_P(Estimate, PartsEqualWhatTheRunAllocates) {
  const Case& c = GetParam();
  const RunConfig run = make_run(c);
  const int world = c.dp * c.tp, rows = run.training.batch_size / c.dp;
  for (int r = 0; r < world; r++) {
    const RankPlace place = rank_place(run.parallel, r);
    const RankMemory m = estimate_rank_memory(run, world, place, 1000);
    TensorParallel<float> tp;
    tp.shard = {place.tp_rank, c.tp};
    tp.sequence = c.sequence;
    tp.replicas.size = c.dp;
    tp.experts.rank = place.ep_rank, tp.experts.size = c.ep;
    const GPT<float> model(run.model, rows, tp);
    SCOPED_TRACE(c.kind.name + " rank " + std::to_string(r));
    EXPECT_EQ(m.weights, double(model.param_bytes()));
    EXPECT_EQ(m.gradients, double(model.grad_bytes()));
    const AdamW opt(model.param_layout(), run.training, {{0, model.param_layout().total()}});
    EXPECT_EQ(m.optimizer, double(opt.state_bytes()));
    EXPECT_EQ(m.activations + m.workspaces, double(model.activation_bytes()));  // the report's "activations"
    EXPECT_GT(m.activations, 0);
    EXPECT_EQ(m.data, 1000.0 + 2.0 * rows * run.model.seq_len * sizeof(int));  // the corpus and one batch
    EXPECT_EQ(m.runtime, 0.0);  // the caller's to fill
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, Estimate,
    ::testing::Values(
        Case{{"mha", [](ModelConfig&) {}}, 1, 1, 1}, Case{{"mha", [](ModelConfig&) {}}, 2, 1, 1},
        Case{{"mha", [](ModelConfig&) {}}, 1, 2, 1},
        Case{{"gqa", [](ModelConfig& m) { m.norm = Norm::RMSNorm, m.positions = Positions::RoPE, m.n_kv_heads = 1; }}, 1, 2, 1},
        Case{{"sinusoidal_sp", [](ModelConfig& m) { m.positions = Positions::Sinusoidal; }}, 1, 2, 1, false, true},
        Case{{"moe", [](ModelConfig& m) { m.mlp = ChannelMixerKind::MoE, m.moe_experts = 4, m.moe_top_k = 2, m.moe_d_ff = 32; }}, 2, 1, 2},
        Case{{"moe", [](ModelConfig& m) { m.mlp = ChannelMixerKind::MoE, m.moe_experts = 4, m.moe_top_k = 1, m.moe_d_ff = 32; }}, 2, 1, 1},
        Case{{"mamba", [](ModelConfig& m) { m.token_mixer = TokenMixerKind::Mamba; }}, 1, 2, 1},
        Case{{"rwkv6", [](ModelConfig& m) { m.token_mixer = TokenMixerKind::RWKV6; }}, 2, 1, 1},
        Case{{"lora", [](ModelConfig& m) {
               m.finetune.method = FinetuneMethod::LoRA, m.finetune.rank = 4, m.finetune.target_modules = {"all"};
             }}, 1, 2, 1}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return i.param.kind.name + "_dp" + std::to_string(i.param.dp) + "_tp" + std::to_string(i.param.tp) + "_ep" +
             std::to_string(i.param.ep);
    });

// ZeRO-1: each dp rank keeps moments for its part of every bucket; together they are the whole.
TEST(EstimateZero1, OptimizerSharesAddUpToTheWhole) {
  const Case c{{"mha", [](ModelConfig&) {}}, 3, 1, 1, true};
  RunConfig run = make_run(c);
  run.training.batch_size = 6;
  const RunEstimate e = estimate_run(run, 3, 0);
  double shares = 0;
  for (const RankMemory& m : e.ranks) shares += m.optimizer;
  EXPECT_EQ(shares, 2.0 * sizeof(float) * e.params.trainable);
  EXPECT_LT(e.ranks[0].optimizer, 2.0 * sizeof(float) * e.params.trainable / 2);  // a third each, about
  run.parallel.zero1 = false;  // the reduced bucket part is ZeRO-1's workspace
  EXPECT_GT(e.ranks[0].workspaces, estimate_run(run, 3, 0).ranks[0].workspaces);
}

// MPI's buffers: an overlapped sync may have every bucket in flight (the whole gradient arena); a
// blocking one a bucket at a time; one rank none.
TEST(EstimateCommunication, FollowsTheSyncSchedule) {
  RunConfig run = make_run({{"mha", [](ModelConfig&) {}}, 2, 1, 1});
  const RankMemory overlapped = estimate_run(run, 2, 0).ranks[0];
  EXPECT_EQ(overlapped.communication, overlapped.gradients);
  run.parallel.overlap = false;
  const double blocking = estimate_run(run, 2, 0).ranks[0].communication;
  EXPECT_GT(blocking, 0);
  EXPECT_LE(blocking, run.parallel.bucket_mib * (1 << 20));
  run.parallel.dp = 1;
  EXPECT_EQ(estimate_run(run, 1, 0).ranks[0].communication, 0);
}

// A LoRA fine-tune trains the adapters only: trainable < total, gradients and moments follow it.
TEST(EstimateParams, FrozenBaseHasNoGradientOrMoments) {
  const Case c{{"lora", [](ModelConfig& m) {
                  m.finetune.method = FinetuneMethod::LoRA, m.finetune.rank = 4, m.finetune.target_modules = {"all"};
                }}, 1, 1, 1};
  const RunConfig run = make_run(c);
  const RunEstimate e = estimate_run(run, 1, 0);
  EXPECT_LT(e.params.trainable, e.params.total / 4);
  EXPECT_EQ(e.ranks[0].gradients, sizeof(float) * e.params.trainable);
  EXPECT_EQ(e.ranks[0].optimizer, 2 * sizeof(float) * e.params.trainable);
  EXPECT_EQ(e.ranks[0].weights, sizeof(float) * e.params.total);
}

// MoE: each token uses top_k of E experts, so fewer parameters are active than exist.
TEST(EstimateParams, MoEActiveBelowTotalAndFlopsFollowTheConvention) {
  const Case c{{"moe", [](ModelConfig& m) { m.mlp = ChannelMixerKind::MoE, m.moe_experts = 4, m.moe_top_k = 1, m.moe_d_ff = 32; }},
               1, 1, 1};
  const RunConfig run = make_run(c);
  const RunEstimate e = estimate_run(run, 1, 0);
  EXPECT_LT(e.params.active_per_token, e.params.total);
  EXPECT_EQ(e.tokens_per_step, 4.0 * 16);
  EXPECT_EQ(e.flops_per_step, training_flops_per_token(run.model) * 4 * 16);
}

// The grid as mpi::make_grid makes it: tp groups of consecutive ranks, ep groups of consecutive dp ranks.
TEST(EstimatePlace, RanksFollowTheGrid) {
  ParallelConfig p;
  p.dp = 4, p.tp = 2, p.ep = 2;
  const RankPlace r5 = rank_place(p, 5);
  EXPECT_EQ(r5.dp_rank, 2);
  EXPECT_EQ(r5.tp_rank, 1);
  EXPECT_EQ(r5.ep_rank, 0);
  const RankPlace r7 = rank_place(p, 7);
  EXPECT_EQ(r7.dp_rank, 3);
  EXPECT_EQ(r7.ep_rank, 1);
}

}  // namespace
}  // namespace ellm
