// A training step allocates nothing after the first (issue 15): forward, backward, the gradient
// norm and AdamW of the model kinds the suite trains, counted by replacing the global operator
// new in this test binary (every thread's allocations count). The first step may size
// workspaces; from the second on every buffer is reused.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "model/gpt.hpp"
#include "support/train_step.hpp"
#include "train/optimizer.hpp"
#include "util/phases.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::aligned_alloc(std::size_t(a), (n + std::size_t(a) - 1) / std::size_t(a) * std::size_t(a))) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace ellm;

namespace {

ModelConfig base() {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = 64;
  m.n_heads = 4;
  m.d_ff = 128;
  m.seq_len = 32;
  return m;
}

// Allocations during steps 2 … 4 of forward, backward, global norm and AdamW.
long allocations_after_first_step(const ModelConfig& m, int threads) {
  rank_pool().set_threads(threads);
  const int B = 2;
  ellm::testing::StepRig rig(m, B);
  long counted = 0;
  phase_clock_start();  // the per-phase timers run in every timed step: they must not allocate
  for (int step = 0; step < 4; step++) {
    const long before = g_allocations.load();
    rig.step();
    if (step > 0) counted += g_allocations.load() - before;
  }
  phase_clock_stop();
  rank_pool().set_threads(1);
  return counted;
}

struct Kind {
  std::string name;
  void (*edit)(ModelConfig&);
};

}  // namespace

class StepAllocations : public ::testing::TestWithParam<Kind> {};

TEST_P(StepAllocations, NoneAfterTheFirstStep) {
  ModelConfig m = base();
  GetParam().edit(m);
  for (int threads : {1, 2}) EXPECT_EQ(allocations_after_first_step(m, threads), 0) << GetParam().name << ", " << threads << " threads";
}

INSTANTIATE_TEST_SUITE_P(
    Models, StepAllocations,
    ::testing::Values(Kind{"gpt", [](ModelConfig&) {}},
                      Kind{"llama", [](ModelConfig& m) {
                             m.norm = Norm::RMSNorm, m.activation = Activation::SwiGLU, m.positions = Positions::RoPE;
                             m.n_kv_heads = 2;
                           }},
                      Kind{"alibi_window", [](ModelConfig& m) { m.positions = Positions::ALiBi, m.window = 8; }},
                      Kind{"mla", [](ModelConfig& m) { m.attention = AttentionKind::MLA, m.mla_kv_latent = 32, m.mla_rope_dim = 8; }},
                      Kind{"nsa", [](ModelConfig& m) {
                             m.attention = AttentionKind::NSA, m.nsa_block = 8, m.nsa_stride = 4, m.nsa_select_block = 8;
                             m.nsa_select_n = 3, m.nsa_window = 8;
                           }},
                      Kind{"moe", [](ModelConfig& m) { m.mlp = ChannelMixerKind::MoE, m.moe_experts = 4, m.moe_top_k = 2, m.moe_d_ff = 64; }},
                      Kind{"mamba", [](ModelConfig& m) { m.token_mixer = TokenMixerKind::Mamba; }},
                      Kind{"rwkv6", [](ModelConfig& m) { m.token_mixer = TokenMixerKind::RWKV6; }}),
    [](const ::testing::TestParamInfo<Kind>& i) { return i.param.name; });
