// Fine-tuning (docs/PEFT.md): the adapters' gradients against finite differences (double), layer
// by layer and in a whole model; the adapted model at initialisation equals the base; merged
// equals unmerged; frozen tensors have no gradient and no optimizer state and stay bit-identical
// through training; PiSSA's SVD; the job's fine-tuning rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"
#include "kernels/svd.hpp"
#include "model/gpt.hpp"
#include "model/parallel_linear.hpp"
#include "support/gradcheck.hpp"
#include "train/optimizer.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {
using testing::expect_gradient_matches;
using testing::random_doubles;
using Vec = std::vector<double>;

FinetuneConfig finetune(FinetuneMethod method, std::vector<std::string> targets = {"all"}, int rank = 2) {
  FinetuneConfig f;
  f.method = method;
  f.rank = rank;
  f.alpha = 3;
  f.target_modules = std::move(targets);
  f.freeze_last_k = 1;
  return f;
}

// ---- one adapted linear ----

// A column-parallel linear (6 outputs, 5 inputs, a bias) adapted on two ranges of its rows, as
// SwiGLU's gate and up, or a row-parallel one adapted whole ("down"); base frozen.
struct AdapterRig {
  static constexpr int N = 4, C = 5, OC = 6;
  FinetuneConfig f;
  bool row;
  ArenaLayout params, acts;
  ColumnParallelLinear<double> col;
  RowParallelLinear<double> rowl;
  Vec p, g, act, x, w, y, dx;

  AdapterRig(FinetuneConfig config, bool row_parallel) : f(std::move(config)), row(row_parallel) {
    ArenaLayout counting, counting_acts;
    declare(counting, counting_acts);
    std::size_t trainable = 0;
    for (const TensorInfo& t : counting.tensors()) trainable += t.trainable ? t.numel : 0;
    params = ArenaLayout(trainable);
    declare(params, acts);
    p.assign(params.total(), 0);
    g.assign(params.trainable_total(), 0);
    act.assign(acts.total(), 0);
    init_tensors(params, p.data(), 5);
    adapter().init_from_base(arenas(), {});
    Rng rng(9);  // B ≠ 0 (and m away from ‖W₀‖), so that every path carries a gradient
    for (const TensorInfo& t : params.tensors())
      if (t.adapter) for (std::size_t i = 0; i < t.numel; i++) p[t.offset + i] += 0.3 * rng.normal();
    x = random_doubles(std::size_t(N) * C, 1);
    w = random_doubles(std::size_t(N) * OC, 2);
    y.assign(w.size(), 0);
    dx.assign(x.size(), 0);
  }
  void declare(ArenaLayout& P, ArenaLayout& A) {
    const Declarer d{P, A, "", 0, true};
    if (row) {
      rowl = {};
      rowl.declare(d, "out", C, OC, Init::normal(0.5), true, TpShard{});
      rowl.adapt(d, f, "down", C, TpShard{}, N);
    } else {
      col = {};
      col.declare(d, C, {weight("fc.w", {OC, C}, Init::normal(0.5))}, {bias("fc.b", {OC})});
      col.adapt(d, f, {{"gate", col.w, 0, 0, 3, {}}, {"up", col.w, 3, 3, 3, {}, 3}}, N);
    }
  }
  const LinearAdapter<double>& adapter() const { return row ? rowl.adapter : col.adapter; }
  const DropoutDraw* draw = nullptr;  // adapter dropout's masks (f.dropout > 0), or off
  Arenas<double> arenas() { return {p.data(), g.data(), act.data(), nullptr, nullptr, g.size(), draw}; }
  double loss() {
    if (row) rowl.forward(arenas(), x.data(), y.data(), N);
    else col.forward(arenas(), x.data(), y.data(), N);
    return testing::weighted_sum(y, w);
  }
  void backward() {
    std::fill(g.begin(), g.end(), 0.0);
    loss();
    if (row) rowl.backward(arenas(), dx.data(), w.data(), x.data(), N);
    else col.backward(arenas(), dx.data(), w.data(), x.data(), N);
  }
  // Every trainable tensor and the input against finite differences.
  void check() {
    backward();
    adapter().hold_norms(true);  // DoRA: the detached norm is a constant of the loss
    const Vec grads = g;
    for (const TensorInfo& t : params.tensors()) {
      ASSERT_EQ(t.trainable, t.adapter) << t.name;  // the base is frozen, the adapters train
      if (!t.trainable) continue;
      Vec v(p.begin() + t.offset, p.begin() + t.offset + t.numel);
      const Vec an(grads.begin() + t.offset, grads.begin() + t.offset + t.numel);
      expect_gradient_matches(v, an, [&] {
        std::copy(v.begin(), v.end(), p.begin() + t.offset);
        return loss();
      }, t.name, t.shape);
      std::copy(v.begin(), v.end(), p.begin() + t.offset);
    }
    const Vec dx_an = dx;
    expect_gradient_matches(x, dx_an, [&] { return loss(); }, "dx", testing::MatrixShape(N, C));
    adapter().hold_norms(false);
  }
};

class AdapterGradCheck : public ::testing::TestWithParam<std::tuple<FinetuneMethod, bool>> {};

TEST_P(AdapterGradCheck, EveryAdapterTensorAndTheInput) {
  AdapterRig rig(finetune(std::get<0>(GetParam())), std::get<1>(GetParam()));
  EXPECT_FALSE(rig.adapter().empty());
  rig.check();
}

std::string adapter_case_name(const ::testing::TestParamInfo<std::tuple<FinetuneMethod, bool>>& info) {
  return method_name(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_row" : "_column");
}

INSTANTIATE_TEST_SUITE_P(Methods, AdapterGradCheck,
                         ::testing::Combine(::testing::Values(FinetuneMethod::LoRA, FinetuneMethod::RSLoRA,
                                                              FinetuneMethod::DoRA, FinetuneMethod::PiSSA),
                                            ::testing::Bool()),
                         adapter_case_name);

// Adapter dropout (PEFT's: on the adapter's input only), with the masks of one draw fixed: the
// gradient of every adapter tensor and of the input against finite differences.
TEST(AdapterDropout, GradientWithAFixedMask) {
  for (const FinetuneMethod m : {FinetuneMethod::LoRA, FinetuneMethod::PiSSA}) {
    for (const bool row : {false, true}) {
      FinetuneConfig f = finetune(m);
      f.dropout = 0.4;
      AdapterRig rig(f, row);
      const DropoutDraw draw{12345, 3, 2};
      rig.draw = &draw;
      rig.check();
    }
  }
}

// The draw decides the masks: the same draw, the same output; another step's draw, another
// output; no draw (evaluation), the output without dropout; and about p of the inputs dropped.
TEST(AdapterDropout, MasksComeFromTheDrawAndAreOffAtEvaluation) {
  FinetuneConfig f = finetune(FinetuneMethod::LoRA);
  f.dropout = 0.5;
  AdapterRig rig(f, false);
  AdapterRig plain(finetune(FinetuneMethod::LoRA), false);
  const DropoutDraw step1{7, 0, 2}, step2{8, 0, 2};
  const auto output = [](AdapterRig& r, const DropoutDraw* d) {
    r.draw = d;
    r.loss();
    return r.y;
  };
  const Vec a = output(rig, &step1), b = output(rig, &step1), c = output(rig, &step2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(output(rig, nullptr), output(plain, nullptr));  // the same start (seeds), no dropout
  EXPECT_NE(a, output(plain, nullptr));
  // The two segments' dropped inputs: each about half zeros, the rest x / (1 − p).
  rig.draw = &step1;
  rig.loss();
  std::size_t zeros = 0, total = 0;
  for (const TensorInfo& t : rig.acts.tensors()) {
    if (t.name.find("lora_x_dropped") == std::string::npos) continue;
    for (std::size_t i = 0; i < t.numel; i++, total++) {
      const double v = rig.act[t.offset + i], x = rig.x[i];
      if (v == 0) zeros++;
      else EXPECT_DOUBLE_EQ(v, 2 * x) << t.name << " " << i;
    }
  }
  ASSERT_EQ(total, 2u * AdapterRig::N * AdapterRig::C);
  EXPECT_GT(zeros, total / 4);
  EXPECT_LT(zeros, 3 * total / 4);
}

// DoRA's gradient of A and B is the one with the norm detached: the true derivative (the norm
// recomputed at every perturbation) differs from it, so the check above did test the detachment.
TEST(DoraNorm, IsDetachedFromTheGradient) {
  AdapterRig rig(finetune(FinetuneMethod::DoRA), false);
  rig.backward();
  const Vec grads = rig.g;
  const TensorInfo& a = rig.params.tensors()[2];  // gate.lora_A
  ASSERT_EQ(a.name, "gate.lora_A");
  Vec v(rig.p.begin() + a.offset, rig.p.begin() + a.offset + a.numel);
  const Vec an(grads.begin() + a.offset, grads.begin() + a.offset + a.numel);
  const testing::GradientReport r = testing::check_gradient(v, an, [&] {
    std::copy(v.begin(), v.end(), rig.p.begin() + a.offset);
    return rig.loss();
  }, a.shape);
  EXPECT_GT(r.failures, 0u);
}

// ---- whole models ----

ModelConfig tiny(Activation act, Positions pos, int kv_heads, FinetuneConfig f) {
  ModelConfig m;
  m.vocab_size = 11;
  m.n_layers = 2;
  m.d_model = 8;
  m.n_heads = 2;
  m.n_kv_heads = kv_heads;
  m.d_ff = 12;
  m.seq_len = 5;
  m.norm = Norm::RMSNorm;
  m.activation = act;
  m.positions = pos;
  m.finetune = std::move(f);
  return m;
}

std::vector<int> random_tokens(int n, int vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<int> t(n);
  for (int& x : t) x = int(rng.below(vocab));
  return t;
}

// Every trainable tensor against finite differences; frozen tensors lie past the gradient arena.
void check_model(const ModelConfig& cfg) {
  const int B = 2;
  GPT<double> model(cfg, B);
  model.init_params(42);
  for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] *= 3;  // visible gradients, mild curvature
  model.init_adapters();
  Rng noise(7);
  for (const TensorInfo& t : model.param_layout().tensors())
    if (t.adapter) for (std::size_t i = 0; i < t.numel; i++) model.params()[t.offset + i] += 0.1 * noise.normal();
  const std::vector<int> tokens = random_tokens(B * cfg.seq_len, cfg.vocab_size, 3);
  const std::vector<int> targets = random_tokens(B * cfg.seq_len, cfg.vocab_size, 4);
  model.zero_grad();
  model.forward(tokens.data(), targets.data(), B);
  model.backward();
  model.hold_adapter_norms(true);  // DoRA: the detached norm is a constant of the loss
  Vec params(model.params(), model.params() + model.num_params());
  const Vec grads(model.grads(), model.grads() + model.num_grads());
  int checked = 0;
  for (const TensorInfo& t : model.param_layout().tensors()) {
    if (!t.trainable) {
      EXPECT_GE(t.offset, model.num_grads()) << t.name;
      continue;
    }
    Vec x(params.begin() + t.offset, params.begin() + t.offset + t.numel);
    const Vec g(grads.begin() + t.offset, grads.begin() + t.offset + t.numel);
    expect_gradient_matches(x, g, [&] {
      std::copy(x.begin(), x.end(), params.begin() + t.offset);
      std::copy(params.begin(), params.end(), model.params());
      return model.forward(tokens.data(), targets.data(), B);
    }, t.name, t.shape);
    std::copy(x.begin(), x.end(), params.begin() + t.offset);
    checked++;
  }
  EXPECT_GT(checked, 0);
}

TEST(PeftModelGradCheck, LoraOnEveryLinearGelu) {
  check_model(tiny(Activation::GELU, Positions::Learned, 0, finetune(FinetuneMethod::LoRA)));
}
TEST(PeftModelGradCheck, LoraPlusSwigluRopeGqa) {
  check_model(tiny(Activation::SwiGLU, Positions::RoPE, 1, finetune(FinetuneMethod::LoRAPlus)));
}
TEST(PeftModelGradCheck, RsloraQV) {
  check_model(tiny(Activation::GELU, Positions::RoPE, 0, finetune(FinetuneMethod::RSLoRA, {"q", "v"})));
}
TEST(PeftModelGradCheck, PissaEveryLinear) {
  check_model(tiny(Activation::SwiGLU, Positions::RoPE, 0, finetune(FinetuneMethod::PiSSA)));
}
TEST(PeftModelGradCheck, DoraEveryLinearSwigluRopeGqa) {
  check_model(tiny(Activation::SwiGLU, Positions::RoPE, 1, finetune(FinetuneMethod::DoRA)));
}
TEST(PeftModelGradCheck, DoraEveryLinearGelu) {
  check_model(tiny(Activation::GELU, Positions::Learned, 0, finetune(FinetuneMethod::DoRA)));
}
TEST(PeftModelGradCheck, FreezeAllButTheLastBlock) {
  check_model(tiny(Activation::GELU, Positions::Learned, 0, finetune(FinetuneMethod::Freeze)));
}

TEST(PeftModelGradCheck, FreezeAllButTheLastBlocksAttention) {
  FinetuneConfig f = finetune(FinetuneMethod::Freeze);
  f.freeze_modules = {"attn"};
  check_model(tiny(Activation::SwiGLU, Positions::RoPE, 1, f));
}

// ---- the adapted model at its start ----

std::vector<float> probabilities(GPT<float>& model, const std::vector<int>& tokens) {
  const std::vector<int> targets(tokens.size(), 0);
  model.forward(tokens.data(), targets.data(), 2);
  const std::size_t n = tokens.size() * model.config().vocab_size;
  return {model.probabilities(), model.probabilities() + n};
}

// The base weights (by name) of `from` into `to`.
void copy_base(const GPT<float>& from, GPT<float>& to) {
  for (const TensorInfo& t : to.param_layout().tensors()) {
    if (t.adapter) continue;
    for (const TensorInfo& s : from.param_layout().tensors())
      if (s.name == t.name) std::copy_n(from.params() + s.offset, t.numel, to.params() + t.offset);
  }
}

TEST(PeftStart, LoraWithBZeroReproducesTheBaseExactly) {
  const ModelConfig base = tiny(Activation::SwiGLU, Positions::RoPE, 1, {});
  GPT<float> full(base, 2);
  full.init_params(11);
  for (FinetuneMethod m : {FinetuneMethod::LoRA, FinetuneMethod::LoRAPlus, FinetuneMethod::RSLoRA, FinetuneMethod::DoRA}) {
    ModelConfig cfg = base;
    cfg.finetune = finetune(m);
    GPT<float> lora(cfg, 2);
    lora.init_params(11);  // the adapters draw from their own stream: the same base
    lora.init_adapters();
    const std::vector<int> tokens = random_tokens(10, 11, 5);
    const std::vector<float> want = probabilities(full, tokens), got = probabilities(lora, tokens);
    if (m == FinetuneMethod::DoRA) {  // m/‖W₀‖ ⊙ W₀: equal within rounding
      for (std::size_t i = 0; i < want.size(); i++) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
    } else {
      EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << int(m);
    }
  }
}

TEST(PeftStart, PissaReproducesTheBaseWithinRounding) {
  const ModelConfig base = tiny(Activation::SwiGLU, Positions::RoPE, 0, {});
  GPT<float> full(base, 2);
  full.init_params(11);
  ModelConfig cfg = base;
  cfg.finetune = finetune(FinetuneMethod::PiSSA, {"all"}, 3);
  GPT<float> pissa(cfg, 2);
  copy_base(full, pissa);
  pissa.init_adapters();
  const std::vector<int> tokens = random_tokens(10, 11, 5);
  const std::vector<float> want = probabilities(full, tokens), got = probabilities(pissa, tokens);
  for (std::size_t i = 0; i < want.size(); i++) EXPECT_NEAR(got[i], want[i], 2e-6) << i;
  // and the residual is not the base: the adapters hold its principal part
  double moved = 0;
  for (const TensorInfo& t : pissa.param_layout().tensors())
    if (t.name == "h.0.attn.q.w")
      for (std::size_t i = 0; i < t.numel; i++)
        moved += std::fabs(pissa.params()[t.offset + i] - full.params()[t.offset + i]);
  EXPECT_GT(moved, 1e-3);
}

// Merged (W₀ ← the adapted weight, the adapters off) computes what the adapted model did, and
// unmerging gives the base weights back.
TEST(PeftMerge, MergedEqualsUnmergedAndUnmergeRestores) {
  for (FinetuneMethod m : {FinetuneMethod::LoRA, FinetuneMethod::DoRA}) {
    GPT<float> model(tiny(Activation::GELU, Positions::Learned, 0, finetune(m)), 2);
    model.init_params(3);
    model.init_adapters();
    Rng rng(4);
    for (const TensorInfo& t : model.param_layout().tensors())
      if (t.adapter) for (std::size_t i = 0; i < t.numel; i++) model.params()[t.offset + i] += 0.1f * float(rng.normal());
    const std::vector<float> before(model.params(), model.params() + model.num_params());
    const std::vector<int> tokens = random_tokens(10, 11, 5);
    const std::vector<float> adapted = probabilities(model, tokens);
    model.merge_adapters(+1);
    const std::vector<float> merged = probabilities(model, tokens);
    for (std::size_t i = 0; i < adapted.size(); i++) EXPECT_NEAR(merged[i], adapted[i], 2e-6) << i;
    model.merge_adapters(-1);
    for (std::size_t i = 0; i < before.size(); i++) EXPECT_NEAR(model.params()[i], before[i], 1e-6) << i;
    const std::vector<float> again = probabilities(model, tokens);
    for (std::size_t i = 0; i < adapted.size(); i++) EXPECT_NEAR(again[i], adapted[i], 2e-6) << i;
  }
}

// ---- what frozen tensors cost ----

struct Trained {
  std::vector<float> start, end;
  std::size_t grads = 0, moments_bytes = 0, adapter_elems = 0;
};

Trained train_a_little(const ModelConfig& cfg) {
  GPT<float> model(cfg, 2);
  model.init_params(1);
  model.init_adapters();
  TrainingConfig t;
  AdamW opt(model.param_layout(), t, {{0, model.num_grads()}});
  Trained out;
  out.start.assign(model.params(), model.params() + model.num_params());
  for (int step = 0; step < 3; step++) {
    const std::vector<int> tokens = random_tokens(10, 11, 20 + step), targets = random_tokens(10, 11, 40 + step);
    model.zero_grad();
    model.forward(tokens.data(), targets.data(), 2);
    model.backward();
    opt.step(model.params(), model.grads(), 1e-2, 1.0);
  }
  out.end.assign(model.params(), model.params() + model.num_params());
  out.grads = model.num_grads();
  out.moments_bytes = opt.state_bytes();
  for (const TensorInfo& ti : model.param_layout().tensors()) out.adapter_elems += ti.adapter ? ti.numel : 0;
  return out;
}

TEST(PeftArenas, LoraGradientAndOptimizerArenasHoldOnlyTheAdapters) {
  const Trained r = train_a_little(tiny(Activation::GELU, Positions::Learned, 0, finetune(FinetuneMethod::LoRA, {"q", "v"}, 1)));
  EXPECT_GT(r.adapter_elems, 0u);
  EXPECT_EQ(r.grads, r.adapter_elems);
  EXPECT_EQ(r.moments_bytes, 2 * sizeof(float) * r.adapter_elems);
  EXPECT_LT(r.grads * 4, r.start.size());  // the base is most of the model
}

TEST(PeftArenas, FrozenTensorsAreBitIdenticalAfterTraining) {
  for (FinetuneMethod m : {FinetuneMethod::LoRA, FinetuneMethod::DoRA, FinetuneMethod::Freeze}) {
    const ModelConfig cfg = tiny(Activation::SwiGLU, Positions::RoPE, 1, finetune(m));
    const Trained r = train_a_little(cfg);
    // frozen tensors lie past the gradient arena (ArenaLayout's split): [grads, end)
    ASSERT_LT(r.grads, r.start.size());
    EXPECT_EQ(std::memcmp(r.start.data() + r.grads, r.end.data() + r.grads,
                          (r.start.size() - r.grads) * sizeof(float)), 0) << int(m);
    std::size_t moved = 0;
    for (std::size_t i = 0; i < r.grads; i++) moved += r.start[i] != r.end[i];
    EXPECT_GT(moved, r.grads / 2) << int(m);  // the trainable part did train
  }
}

// Freezing by part (finetune.freeze_modules): the parts of the trained block add up to the
// whole block, a part left out keeps its values, the chosen part trains.
TEST(PeftArenas, FreezingByPartTrainsOnlyThoseParts) {
  const auto trained = [](std::vector<std::string> parts) {
    FinetuneConfig f = finetune(FinetuneMethod::Freeze);
    f.freeze_modules = std::move(parts);
    return train_a_little(tiny(Activation::SwiGLU, Positions::RoPE, 1, f));
  };
  const Trained all = trained({"all"}), attn = trained({"attn"}), mlp = trained({"mlp"}), norm = trained({"norm"});
  EXPECT_EQ(attn.grads + mlp.grads + norm.grads, all.grads);
  EXPECT_EQ(trained({"attn", "mlp", "norm"}).grads, all.grads);
  EXPECT_GT(mlp.grads, norm.grads);
  EXPECT_GT(norm.grads, 0u);
  for (const Trained* r : {&attn, &mlp, &norm}) {
    EXPECT_EQ(std::memcmp(r->start.data() + r->grads, r->end.data() + r->grads, (r->start.size() - r->grads) * sizeof(float)), 0);
    std::size_t moved = 0;
    for (std::size_t i = 0; i < r->grads; i++) moved += r->start[i] != r->end[i];
    EXPECT_GT(moved, r->grads / 2);
  }
}

// ---- PiSSA's SVD ----

TEST(PissaSvd, ExactAndRandomizedFindTheTopTriplets) {
  const int m = 12, n = 9, r = 3;
  // W = U·diag(10, 5, 2, 0.01…)·Vᵀ-like: a clear gap after the third value
  Vec W = random_doubles(std::size_t(m) * n, 3, 0.01);
  const Vec u = random_doubles(std::size_t(m) * r, 4), v = random_doubles(std::size_t(r) * n, 5);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++)
      for (int k = 0; k < r; k++) W[std::size_t(i) * n + j] += (k + 1) * u[std::size_t(i) * r + k] * v[std::size_t(k) * n + j];
  Vec U(std::size_t(m) * r), S(r), Vt(std::size_t(r) * n), U2 = U, S2 = S, Vt2 = Vt;
  kernels::top_singular_triplets(W.data(), m, n, r, 0, U.data(), S.data(), Vt.data());
  kernels::top_singular_triplets(W.data(), m, n, r, 2, U2.data(), S2.data(), Vt2.data());
  EXPECT_GT(S[0], S[1]);
  EXPECT_GT(S[1], S[2]);
  for (int k = 0; k < r; k++) EXPECT_NEAR(S2[k], S[k], 1e-8 * S[0]) << k;
  // U·S·Vᵀ is the best rank-r approximation: the residual is the small noise only
  for (const auto* f : {&U, &U2}) {
    const Vec& uu = *f;
    const Vec& ss = f == &U ? S : S2;
    const Vec& vv = f == &U ? Vt : Vt2;
    double resid = 0, norm = 0;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double a = 0;
        for (int k = 0; k < r; k++) a += uu[std::size_t(i) * r + k] * ss[k] * vv[std::size_t(k) * n + j];
        resid += std::pow(W[std::size_t(i) * n + j] - a, 2);
        norm += std::pow(W[std::size_t(i) * n + j], 2);
      }
    EXPECT_LT(std::sqrt(resid / norm), 0.01);
  }
}

// ---- the job's rules ----

std::string job_error(const std::string& finetune, const std::string& model = "") {
  try {
    parse_job(R"({"name": "x", "defaults": {"model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_ff": 8)" +
                  model + R"(}, "finetune": )" + finetune + "}}",
              "jobs/x.json");
  } catch (const JobError& e) {
    return e.what();
  }
  return "no error";
}

TEST(PeftConfig, BadConfigurationsFailWithTheirMessages) {
  EXPECT_EQ(job_error(R"({"method": "lora", "rank": 9, "target_modules": ["down"]})"),
            "jobs/x.json: /defaults/finetune/rank: rank (9) must be at most min(in, out) = 8 of "
            "target module \"down\"");
  EXPECT_EQ(job_error(R"({"method": "lora", "target_modules": ["q", "qq"]})"),
            "jobs/x.json: /defaults/finetune/target_modules: unknown target module \"qq\"; "
            "allowed: q, k, v, o, fc, gate, up, down, all");
  EXPECT_EQ(job_error(R"({"method": "freeze", "freeze_last_k": 3})"),
            "jobs/x.json: /defaults/finetune/freeze_last_k: freeze_last_k (3) must be at most "
            "n_layers (2): it is the number of last blocks that train");
  EXPECT_EQ(job_error(R"({"method": "freeze", "freeze_modules": ["mlp", "ffn"]})"),
            "jobs/x.json: /defaults/finetune/freeze_modules: unknown block part \"ffn\"; allowed: attn, mlp, norm, all");
  EXPECT_EQ(job_error(R"({"method": "lora", "freeze_modules": ["mlp"]})"),
            "jobs/x.json: /defaults/finetune/freeze_modules: freeze_modules applies to method \"freeze\"; "
            "method is \"lora\"");
  EXPECT_EQ(job_error(R"({"method": "freeze", "freeze_modules": ["attn", "norm"]})"), "no error");
  EXPECT_EQ(job_error(R"({"method": "dora", "target_modules": ["gate"]})"),
            "jobs/x.json: /defaults/finetune/target_modules: target module \"gate\" is a half of "
            "SwiGLU's first projection; this model's activation is \"gelu\" (use \"fc\")");
  EXPECT_EQ(job_error(R"({"method": "lora"})", R"(, "mlp": "moe")"),
            "jobs/x.json: /defaults/finetune/method: adapters (method \"lora\") are declared on the "
            "linears of attention \"gqa\" and mlp \"dense\" only");
  EXPECT_EQ(job_error(R"({"method": "dora", "dropout": 0.1})"),
            "jobs/x.json: /defaults/finetune/dropout: dropout (0.1) must be 0 with method \"dora\" (DoRA's "
            "dropout, which PEFT applies to the base's input too, is not implemented)");
  EXPECT_EQ(job_error(R"({"method": "lora", "dropout": 1})"),
            "jobs/x.json: /defaults/finetune/dropout: must be in [0, 1), got 1");
  EXPECT_EQ(job_error(R"({"method": "lorax"})"),
            "jobs/x.json: /defaults/finetune/method: must be one of \"full\", \"freeze\", \"lora\", "
            "\"lora_plus\", \"rslora\", \"dora\", \"pissa\"; got \"lorax\"");
  EXPECT_EQ(job_error(R"({"method": "lora", "rank": 4})"), "no error");
}

TEST(PeftConfig, AdapterFilesNeedAnAdapterMethodAndPeftNames) {
  EXPECT_EQ(job_error(R"({"method": "freeze", "save_adapter": "out"})"),
            "jobs/x.json: /defaults/finetune/save_adapter: finetune.save_adapter needs an adapter method "
            "(\"lora\", \"lora_plus\", \"rslora\", \"dora\", \"pissa\"); method is \"freeze\"");
  // PEFT names an adapter by its Hugging Face module: the model must export as one
  EXPECT_EQ(job_error(R"({"method": "lora", "save_adapter": "out"})"),
            "jobs/x.json: /defaults/finetune/save_adapter: cannot name the adapters in PEFT's layout: "
            "model.positions must be \"rope\" (export_hf writes Llama, Qwen2 or GPT-NeoX)");
  const std::string neox = R"(, "positions": "rope", "activation": "gelu_exact")";
  EXPECT_EQ(job_error(R"({"method": "lora", "target_modules": ["o", "down"], "adapter_from": "a"})", neox), "no error");
  EXPECT_EQ(job_error(R"({"method": "lora", "target_modules": ["q"], "adapter_from": "a"})", neox),
            "jobs/x.json: /defaults/finetune/target_modules: cannot name the adapters in PEFT's layout: rows 0…15 "
            "of h.0.attn.q.w are not the whole weight of one GPTNeoXForCausalLM module (GPT-NeoX fuses q, k and "
            "v into query_key_value, per head)");
}

}  // namespace
}  // namespace ellm
