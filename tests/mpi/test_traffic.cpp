// The scaling predictor's communication volumes (src/predict/traffic.hpp) against what the code
// really sends: one training step of a real model — forward, backward with the gradient sync's
// hooks, the syncs, the tensor-parallel partial gradients, ZeRO-1's parameter gather, as
// train/trainer.cpp runs them — on every layout the ranks allow, and the bytes each collective
// kind was handed (mpi::Comm's CollectiveStats) compared with the prediction's. The trainer's
// scalar collectives (loss, norm, stop flags: ≤ 16 bytes each) are not part of this step. MoE's
// all-to-all is compared as the mean over the ranks (traffic.hpp assumes no rank's share).
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "model/gpt.hpp"
#include "mpi/grid.hpp"
#include "predict/traffic.hpp"
#include "train/expert_parallel_comm.hpp"
#include "train/grad_sync.hpp"
#include "train/tensor_parallel_comm.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

using predict::Collective;

struct Case {
  std::string name;
  bool tp, sequence, zero1, overlap, moe;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

RunConfig run_config(const Case& c, int ranks) {
  RunConfig run;
  ModelConfig& m = run.model;
  m.vocab_size = 60, m.n_layers = 2, m.d_model = 24, m.n_heads = 12, m.d_ff = 48, m.seq_len = 12;  // split by 2, 3, 4
  if (c.moe) m.mlp = ChannelMixerKind::MoE, m.moe_experts = 12, m.moe_top_k = 2;
  run.parallel.tp = c.tp ? ranks : 1;
  run.parallel.ep = c.moe ? ranks : 1;
  run.parallel.sequence_parallel = c.sequence;
  run.parallel.zero1 = c.zero1;
  run.parallel.overlap = c.overlap;
  run.parallel.bucket_mib = 1.0 / 1024;  // 1 KiB buckets: several per tensor, as at scale
  return run;
}

std::array<double, 4> sent(const mpi::ProcessGrid& g) {
  std::array<double, 4> b{};
  for (const mpi::Comm* c : {&g.tp, &g.dp, &g.ep, &g.edp}) {
    const mpi::CollectiveStats& s = c->stats();
    b[0] += s.allreduce_bytes, b[1] += s.reduce_scatter_bytes, b[2] += s.allgather_bytes, b[3] += s.alltoall_bytes;
  }
  return b;
}

class Traffic : public ::testing::TestWithParam<Case> {};

TEST_P(Traffic, PredictedBytesAreWhatOneStepSends) {
  const Case& c = GetParam();
  mpi::Comm world = mpi::Comm::world();
  const RunConfig run = run_config(c, world.size());
  const int rows = 2;
  mpi::ProcessGrid grid = mpi::make_grid(world, run.parallel.tp, run.parallel.ep);
  const std::size_t bucket = std::size_t(run.parallel.bucket_mib * 1024 * 1024);
  TensorParallel<float> groups = tensor_parallel(grid.tp, grid.dp, bucket, c.sequence);
  groups.experts = expert_parallel(grid.ep);
  GPT<float> model(run.model, rows, groups);
  model.init_params(7);
  GradientSync sync(model.param_layout(), ReplicaGroup::DataParallel, bucket, c.overlap, c.zero1, grid.dp);
  GradientSync expert_sync(model.param_layout(), ReplicaGroup::ExpertDataParallel, bucket, c.overlap, false, grid.edp);
  std::vector<int> tokens(rows * run.model.seq_len), targets(tokens.size());
  Rng rng(11 + grid.dp.rank());
  for (std::size_t i = 0; i < tokens.size(); i++) tokens[i] = int(rng.below(60)), targets[i] = int(rng.below(60));

  const std::array<double, 4> before = sent(grid);
  model.zero_grad();
  model.forward(tokens.data(), targets.data(), rows);
  model.backward([&](int layer) {
    sync.grads_final_from(layer, model.grads());
    expert_sync.grads_final_from(layer, model.grads());
  });
  sync.finish(model.grads());
  expert_sync.finish(model.grads());
  model.reduce_tensor_parallel_grads();
  sync.gather_params(model.params());
  const std::array<double, 4> after = sent(grid);

  const predict::Layout layout{grid.dp.size(), grid.tp.size(), grid.ep.size()};
  std::vector<predict::Transfer> predicted;
  for (const predict::Transfer& t : predict::step_traffic(run, layout, rows)) {
    if (t.bytes > 16) predicted.push_back(t);  // the trainer's scalars are not in this step
  }
  for (Collective k : predict::kCollectives) {
    double measured = after[std::size_t(k)] - before[std::size_t(k)], expected = predict::total_bytes(predicted, k);
    // An expert's rows go back to where they came from: a rank's all-to-all bytes depend on its
    // routing, their mean over the ranks does not.
    if (k == Collective::all_to_all) measured = world.allreduce_sum(measured) / world.size();
    EXPECT_DOUBLE_EQ(measured, expected) << predict::collective_name(k) << " on rank " << world.rank();
  }
  EXPECT_GT(after[0] + after[1] + after[2] + after[3], 0.0) << "nothing was sent: the case tests nothing";
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, Traffic,
    ::testing::Values(Case{"dp_blocking", false, false, false, false, false},
                      Case{"dp_overlap", false, false, false, true, false},
                      Case{"dp_zero1", false, false, true, false, false},
                      Case{"tp", true, false, false, false, false},
                      Case{"tp_sequence_parallel", true, true, false, false, false},
                      Case{"dp_ep_moe", false, false, false, true, true}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace ellm
