// The data-parallel gradient sync itself, under mpiexec: on every schedule (blocking buckets,
// overlapped buckets, ZeRO-1) each trainable gradient ends as the exact sum over the ranks, a
// frozen tensor is never communicated, and ZeRO-1's owned parts tile the trainable tensors once
// across the ranks and its parameter all-gather leaves every rank with the owners' values.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "mpi/comm.hpp"
#include "train/grad_sync.hpp"

namespace ellm {
namespace {

// Layers -1 (embedding), 0, 1, 2 (final norm); a frozen tensor in layer 0; sizes that do not
// divide the 64-byte (16-float) buckets.
ArenaLayout layout() {
  ArenaLayout l;
  const auto at = [&](TensorDecl d, int layer) {
    d.layer = layer;
    l.add(std::move(d));
  };
  at(weight("wte", {7, 5}, Init::zeros()), -1);
  at(weight("h.0.w", {9, 3}, Init::zeros()), 0);
  at(weight("h.0.frozen", {11}, Init::zeros()).frozen(), 0);
  at(bias("h.0.b", {9}), 0);
  at(weight("h.1.w", {4, 6}, Init::zeros()), 1);
  at(gain("lnf.w", {5}), 2);
  return l;
}

bool is_frozen(const ArenaLayout& l, std::size_t i) {
  for (const TensorInfo& t : l.tensors()) {
    if (i >= t.offset && i < t.offset + t.numel) return !t.trainable;
  }
  return false;
}

struct Mode {
  bool overlap, zero1;
};

class GradSync : public ::testing::TestWithParam<Mode> {};

TEST_P(GradSync, SumsEveryTrainableGradientExactlyAndLeavesFrozenOnesAlone) {
  const auto [overlap, zero1] = GetParam();
  mpi::Comm world = mpi::Comm::world();
  const int r = world.rank(), n = world.size();
  const ArenaLayout l = layout();
  GradientSync sync(l, ReplicaGroup::DataParallel, 64, overlap, zero1, world);
  std::vector<float> grads(l.total());
  for (std::size_t i = 0; i < grads.size(); i++) grads[i] = float((r + 1) * (i % 13 + 1));
  for (int layer = 2; layer >= -1; layer--) sync.grads_final_from(layer, grads.data());  // as backward
  sync.finish(grads.data());

  // Failures are counted, not asserted, so that every rank reaches the collectives below.
  std::size_t owned = 0, wrong = 0, owned_frozen = 0, touched_frozen = 0;
  for (const ArenaRange& range : sync.owned()) {
    for (std::size_t i = range.begin; i < range.end; i++) {
      owned_frozen += is_frozen(l, i);
      wrong += grads[i] != float(n * (n + 1) / 2 * (i % 13 + 1));
    }
    owned += range.end - range.begin;
  }
  for (std::size_t i = 0; i < grads.size(); i++) {
    touched_frozen += is_frozen(l, i) && grads[i] != float((r + 1) * (i % 13 + 1));
  }
  EXPECT_EQ(wrong, 0u) << "owned gradients that are not the sum over the ranks";
  EXPECT_EQ(owned_frozen, 0u) << "frozen elements in an owned range";
  EXPECT_EQ(touched_frozen, 0u) << "frozen gradients changed by the sync";
  const std::size_t trainable = l.total() - 11;
  const double all_owned = world.allreduce_sum(double(owned));
  EXPECT_EQ(all_owned, double(zero1 && n > 1 ? trainable : trainable * n));

  if (!zero1) return;
  std::vector<float> params(l.total(), -1.0f);  // each owner writes its rank into its parts
  for (const ArenaRange& range : sync.owned()) {
    std::fill(params.begin() + range.begin, params.begin() + range.end, float(r));
  }
  sync.gather_params(params.data());
  std::size_t missed = 0;
  for (std::size_t i = 0; i < params.size(); i++) missed += !is_frozen(l, i) && params[i] < 0.0f;
  EXPECT_EQ(missed, 0u) << "trainable elements no owner gathered";
  const double sum = std::accumulate(params.begin(), params.end(), 0.0);
  EXPECT_EQ(world.allreduce_max(sum), world.allreduce_min(sum)) << "ranks disagree after the gather";
}

INSTANTIATE_TEST_SUITE_P(Schedules, GradSync,
                         ::testing::Values(Mode{false, false}, Mode{true, false}, Mode{false, true}),
                         [](const ::testing::TestParamInfo<Mode>& i) {
                           return std::string(i.param.zero1 ? "zero1" : i.param.overlap ? "overlap" : "blocking");
                         });

}  // namespace
}  // namespace ellm
