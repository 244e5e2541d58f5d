// The step's phase clock (util/phases.hpp): exclusive accounting (a nested phase stops the outer
// one), attention keeping its own tile GEMMs, only the starting thread timed, and on a real
// training step the named phases covering the step measured independently, each non-negative,
// GEMM among them.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "model/gpt.hpp"
#include "support/train_step.hpp"
#include "train/optimizer.hpp"
#include "util/phases.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

using namespace ellm;
using namespace std::chrono_literals;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST(PhaseClock, ChargesEachMomentToTheInnermostPhase) {
  const auto t0 = std::chrono::steady_clock::now();
  phase_clock_start();
  {
    const PhaseScope gemm(Phase::gemm);
    std::this_thread::sleep_for(10ms);
    {
      const PhaseScope elementwise(Phase::elementwise);
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(10ms);
  }
  const PhaseSeconds s = phase_clock_read();
  const double wall = seconds_since(t0);
  phase_clock_stop();
  EXPECT_GE(s[Phase::elementwise], 0.100);
  EXPECT_GE(s[Phase::gemm], 0.020);
  EXPECT_LT(s[Phase::gemm], 0.100) << "the inner phase's 100 ms were charged to the outer one too";
  // Every moment goes to exactly one phase: the total is the time since the start.
  EXPECT_LE(s.total(), wall);
  EXPECT_GT(s.total(), wall - 1e-3);
  EXPECT_EQ(s[Phase::attention], 0.0);
}

TEST(PhaseClock, AttentionKeepsItsTileGemms) {
  phase_clock_start();
  {
    const PhaseScope attention(Phase::attention);
    const PhaseScope gemm(Phase::gemm);
    std::this_thread::sleep_for(20ms);
  }
  const PhaseSeconds s = phase_clock_read();
  phase_clock_stop();
  EXPECT_GE(s[Phase::attention], 0.020);
  EXPECT_EQ(s[Phase::gemm], 0.0);
}

TEST(PhaseClock, TimesOnlyTheThreadThatStartedIt) {
  phase_clock_start();
  std::thread other([] {
    const PhaseScope gemm(Phase::gemm);  // its clock is off: no effect anywhere
    std::this_thread::sleep_for(20ms);
  });
  other.join();
  const PhaseSeconds s = phase_clock_read();
  phase_clock_stop();
  EXPECT_EQ(s[Phase::gemm], 0.0);
  EXPECT_GE(s[Phase::other], 0.020);
  {
    const PhaseScope gemm(Phase::gemm);  // stopped: no effect
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(phase_clock_read()[Phase::gemm], 0.0);
}

// A GPT-2 step (biases, LayerNorm, GELU) on 2 pool threads: what no phase covers stays under
// 5 % of the step as timed around it, and the phases a single process runs are all present.
TEST(PhaseClock, PhasesCoverATrainingStep) {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = 128;
  m.n_heads = 4;
  m.d_ff = 512;
  m.seq_len = 128;
  const int B = 4;
  rank_pool().set_threads(2);
  ellm::testing::StepRig rig(m, B);
  PhaseSeconds s;
  double wall = 0;
  for (int step = 0; step < 3; step++) {  // the last one counts (the first sizes workspaces)
    const auto t0 = std::chrono::steady_clock::now();
    phase_clock_start();
    rig.step();
    s = phase_clock_read();
    wall = seconds_since(t0);
    phase_clock_stop();
  }
  rank_pool().set_threads(1);
  const double named = s.total() - s[Phase::other];
  for (int i = 0; i < kPhases; i++) EXPECT_GE(s.seconds[i], 0.0) << phase_name(Phase(i));
  EXPECT_LE(s.total(), wall);
  EXPECT_GT(named, 0.95 * wall) << "untimed: " << s[Phase::other] * 1e3 << " ms of " << wall * 1e3 << " ms";
  for (Phase p : {Phase::gemm, Phase::attention, Phase::elementwise, Phase::loss, Phase::optimizer})
    EXPECT_GT(s[p], 0.0) << phase_name(p);
  EXPECT_EQ(s[Phase::communication], 0.0);  // one process: no collective
}
