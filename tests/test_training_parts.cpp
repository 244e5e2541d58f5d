// The pieces around the model, on inputs whose answers are known: data sharding, UTF-8 checks,
// the learning-rate schedule, clipping, one AdamW step, and latency summaries.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "data/corpus.hpp"
#include "metrics/stats.hpp"
#include "train/optimizer.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

Corpus corpus_of(const std::string& text) {
  Corpus c;
  c.train.tokens.assign(text.begin(), text.end());
  c.val.tokens.assign(text.rbegin(), text.rend());
  return c;
}

TEST(BatchSampler, TwoRanksTogetherSeeTheOneRankBatch) {
  const Corpus c = corpus_of("The quick brown fox jumps over the lazy dog, again and again and again.");
  const int T = 8, B = 4;
  const BatchSampler s(c, T, B, 99);
  std::vector<int> whole(B * T), whole_t(B * T), half0(2 * T), half0_t(2 * T), half1(2 * T), half1_t(2 * T);
  s.train_batch(5, 0, B, whole.data(), whole_t.data());
  s.train_batch(5, 0, 2, half0.data(), half0_t.data());
  s.train_batch(5, 2, 2, half1.data(), half1_t.data());
  half0.insert(half0.end(), half1.begin(), half1.end());
  half0_t.insert(half0_t.end(), half1_t.begin(), half1_t.end());
  EXPECT_EQ(whole, half0);
  EXPECT_EQ(whole_t, half0_t);
  for (int i = 0; i + 1 < T; i++) EXPECT_EQ(whole_t[i], whole[i + 1]);  // targets are the next byte
  std::vector<int> other(B * T), other_t(B * T);
  s.train_batch(6, 0, B, other.data(), other_t.data());
  EXPECT_NE(whole, other);  // a new step draws new windows
}

TEST(BatchSampler, ValidationWindowsSpanTheWholeSplit) {
  const Corpus c = corpus_of("A" + std::string(300, 'a') + "xyz");  // val is reversed: "zyx a… A"
  const int T = 16, B = 4, batches = 3;
  const BatchSampler s(c, T, B, 1);
  std::vector<int> tok(B * T), tgt(B * T);
  s.val_batch(0, batches, 0, B, tok.data(), tgt.data());
  EXPECT_EQ(tok.front(), 'z');  // the first window starts on the split's first byte
  s.val_batch(batches - 1, batches, 0, B, tok.data(), tgt.data());
  EXPECT_EQ(tgt.back(), 'A');  // the last window ends on its last byte
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  auto check = [](const std::string& s) {
    return find_invalid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  EXPECT_EQ(check("plain ASCII"), std::string::npos);
  EXPECT_EQ(check("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(check("ab\xFF"), 2u);          // never valid
  EXPECT_EQ(check("ab\xC3"), 2u);          // truncated sequence
  EXPECT_EQ(check("a\xC0\xAF"), 1u);       // overlong encoding
  EXPECT_EQ(check("a\xE2\x28\xA1"), 1u);   // bad continuation byte
}

TEST(Corpus, TooShortForOneSequenceNamesTheField) {
  const auto path = std::filesystem::temp_directory_path() / "ellm_short_corpus.txt";
  std::ofstream(path) << std::string(100, 'x');
  DataConfig d;
  d.corpus = {path};
  d.val_fraction = 0.1;
  try {
    load_corpus(d, 64, 256, "job.json");
    FAIL() << "expected a JobError";
  } catch (const JobError& e) {
    EXPECT_STREQ(e.what(),
                 "job.json: /data: the corpus splits into 90 training and 10 validation tokens; each "
                 "needs at least seq_len + 1 = 65 (add text or change data.val_fraction)");
  }
  std::filesystem::remove(path);
}

TEST(Schedule, WarmsUpLinearlyThenFollowsTheCosineToMinLr) {
  TrainingConfig t;
  t.steps = 110;
  t.warmup_steps = 10;
  t.lr = 1.0;
  t.min_lr = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate(t, 0), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(t, 4), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(t, 10), 1.0);
  EXPECT_NEAR(learning_rate(t, 60), 0.55, 1e-2);  // about halfway through the cosine
  EXPECT_DOUBLE_EQ(learning_rate(t, 109), 0.1);
}

TEST(Clipping, ScalesOnlyAboveTheLimit) {
  const float g[] = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(global_norm(g, 2), 5.0);
  EXPECT_DOUBLE_EQ(clip_scale(5.0, 1.0), 0.2);
  EXPECT_DOUBLE_EQ(clip_scale(0.5, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(clip_scale(5.0, 0.0), 1.0);  // 0 disables clipping
}

TEST(Clipping, NormOfManyGradientsMatchesOneRunningSum) {
  // Lengths around the eight partial sums' blocks and the 2^16-element chunks that the rank's
  // threads share, random values of mixed magnitude.
  Rng rng(7);
  for (std::size_t n : {1u, 7u, 8u, 9u, 1001u, 4096u, 65535u, 65536u, 65537u, 300001u}) {
    std::vector<float> g(n);
    for (float& v : g) v = float(rng.normal() * std::exp(3.0 * rng.normal()));
    long double naive = 0;
    for (float v : g) naive += (long double)v * v;
    EXPECT_NEAR(global_norm(g.data(), n), double(std::sqrt(naive)), 1e-13 * double(std::sqrt(naive))) << n;
  }
}

TEST(AdamW, FirstStepMovesBySignedLrPlusDecoupledDecay) {
  ArenaLayout layout;
  layout.add(weight("w", {2}, Init::zeros()));
  layout.add(bias("b", {1}));
  TrainingConfig t;
  t.weight_decay = 0.5;
  AdamW opt(layout, t, {{0, layout.total()}});
  float params[] = {1.0f, -2.0f, 3.0f};
  const float grads[] = {0.3f, -0.7f, 2.0f};
  opt.step(params, grads, 0.1, 1.0);
  // Step 1: m̂ = g, v̂ = g², so the update is lr·(sign(g) + wd·p) (eps is negligible).
  EXPECT_NEAR(params[0], 1.0 - 0.1 * (1.0 + 0.5 * 1.0), 1e-6);
  EXPECT_NEAR(params[1], -2.0 - 0.1 * (-1.0 + 0.5 * -2.0), 1e-6);
  EXPECT_NEAR(params[2], 3.0 - 0.1 * 1.0, 1e-6);  // no decay on biases
}

// The gradient norm counts every gradient of the model once: a tensor every tensor-parallel rank
// holds whole counts 1/tp on each, a shard held by k ranks 1/k, an ordinary shard fully.
TEST(GradientNorm, SharedSquareSumCountsEachGradientOnce) {
  ArenaLayout layout;
  layout.add(gain("norm", {2}));                                             // replicated
  layout.add(weight("kv", {4, 1}, Init::zeros()).sharded({0, {{0, 2}}, 2}));  // 2 copies of rows 0-1
  layout.add(weight("q", {4, 1}, Init::zeros()).sharded({0, {{2, 4}}, 1}));   // this rank's rows
  const float grads[] = {1, 2, 3, 4, 5, 6};
  const double tp = 4;
  EXPECT_DOUBLE_EQ(shared_square_sum(layout, grads, {{0, 6}}, int(tp)),
                   (1 + 4) / tp + (9 + 16) / 2.0 + (25 + 36));
  // Only the ranges asked for (a ZeRO-1 part) count.
  EXPECT_DOUBLE_EQ(shared_square_sum(layout, grads, {{1, 3}, {5, 6}}, int(tp)), 4 / tp + 9 / 2.0 + 36);
}

// A frozen tensor gets no moments and no update, even inside the range AdamW is given; the others
// step as usual.
TEST(AdamW, FrozenTensorsHaveNoMomentsAndDoNotMove) {
  ArenaLayout layout;
  layout.add(weight("w", {2}, Init::zeros()));
  layout.add(weight("frozen", {3}, Init::zeros()).frozen());
  layout.add(bias("b", {1}));
  TrainingConfig t;
  AdamW opt(layout, t, {{0, layout.total()}});
  EXPECT_EQ(opt.state_bytes(), 2 * 3 * sizeof(float));
  float params[] = {1, 1, 7, 8, 9, 1};
  const float grads[] = {1, 1, 1, 1, 1, 1};
  opt.step(params, grads, 0.1, 1.0);
  EXPECT_FLOAT_EQ(params[2], 7);
  EXPECT_FLOAT_EQ(params[3], 8);
  EXPECT_FLOAT_EQ(params[4], 9);
  EXPECT_LT(params[0], 1);
  EXPECT_LT(params[5], 1);
}

// N-dimensional shards: an expert tensor (E, out, in) split on E, a matrix split on columns in
// two segments; extract and insert are inverse on the shard and touch nothing else.
TEST(Shards, ExtractAndInsertAnyDimension) {
  ArenaLayout layout;
  layout.add(weight("experts", {4, 2, 3}, Init::zeros()).sharded({0, {{1, 3}}}));
  layout.add(weight("cols", {2, 6}, Init::zeros()).sharded({1, {{1, 2}, {4, 6}}}));
  const TensorInfo& experts = layout.tensors()[0];
  const TensorInfo& cols = layout.tensors()[1];
  EXPECT_EQ(experts.shape, (std::vector<int>{2, 2, 3}));
  EXPECT_EQ(cols.shape, (std::vector<int>{2, 3}));
  std::vector<double> full(24);
  for (std::size_t i = 0; i < full.size(); i++) full[i] = double(i);
  std::vector<double> local(experts.numel);
  extract_shard(full.data(), experts, local.data());
  for (std::size_t i = 0; i < local.size(); i++) EXPECT_EQ(local[i], double(6 + i));  // experts 1, 2
  std::vector<double> back(24, -1.0);
  insert_shard(local.data(), experts, back.data());
  for (std::size_t i = 0; i < 24; i++) EXPECT_EQ(back[i], i >= 6 && i < 18 ? double(i) : -1.0) << i;
  std::vector<double> c(cols.numel);
  extract_shard(full.data(), cols, c.data());
  EXPECT_EQ(c, (std::vector<double>{1, 4, 5, 7, 10, 11}));
}

// Each initialiser as declared; a shard starts as its part of the whole tensor (the normal draws
// of a sharded layout are the tp = 1 model's), and a custom initialiser sees full indices.
TEST(Init, EveryKindAsDeclaredAndShardsOfTheSameWholeTensor) {
  const auto declare = [](Shard normal_shard, Shard ramp_shard) {
    ArenaLayout l;
    l.add(weight("w", {3, 4}, Init::normal(0.5)).sharded(std::move(normal_shard)));
    l.add(bias("b", {2}));
    l.add(gain("g", {2}));
    l.add(weight("c", {2}, Init::constant(-0.25)));
    l.add(weight("ramp", {2, 3}, Init::custom("log(1 + column)", [](std::size_t i, const std::vector<int>& shape) {
                  return std::log(1.0 + double(i % shape[1]));
                })).sharded(std::move(ramp_shard)));
    return l;
  };
  const ArenaLayout whole = declare({}, {});
  const ArenaLayout part = declare({1, {{2, 4}}}, {1, {{1, 3}}});  // columns 2-3; columns 1-2
  std::vector<double> a(whole.total()), b(part.total());
  init_tensors(whole, a.data(), 7);
  init_tensors(part, b.data(), 7);
  double ss = 0;
  for (int i = 0; i < 12; i++) ss += a[i] * a[i];
  EXPECT_GT(ss, 0.1);  // drawn, with a spread of the declared order (0.5² · 12 = 3 expected)
  EXPECT_LT(ss, 12.0);
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 2; c++) EXPECT_EQ(b[r * 2 + c], a[r * 4 + 2 + c]) << r << "," << c;
  }
  EXPECT_EQ(std::vector<double>(a.begin() + 12, a.begin() + 18),
            (std::vector<double>{0, 0, 1, 1, -0.25, -0.25}));
  const double* ramp = a.data() + 18;
  for (int r = 0; r < 2; r++) {
    for (int c = 0; c < 3; c++) EXPECT_DOUBLE_EQ(ramp[r * 3 + c], std::log(1.0 + c));
  }
  const double* ramp_part = b.data() + part.tensors()[4].offset;
  EXPECT_DOUBLE_EQ(ramp_part[0], std::log(2.0));  // row 0, full column 1
  EXPECT_DOUBLE_EQ(ramp_part[3], std::log(3.0));  // row 1, full column 2
}

TEST(ParamCounts, TrainableAndActiveFollowTheDeclarations) {
  ArenaLayout layout;
  layout.add(weight("dense", {4, 5}, Init::zeros()).sharded({0, {{0, 2}}}));  // counts 20, not 10
  layout.add(weight("frozen", {3}, Init::zeros()).frozen());
  TensorDecl expert = weight("experts", {8, 2}, Init::zeros());
  expert.active_fraction = 0.25;  // top-2 of 8 experts
  layout.add(std::move(expert));
  const ParamCounts n = count_params(layout);
  EXPECT_DOUBLE_EQ(n.total, 20 + 3 + 16);
  EXPECT_DOUBLE_EQ(n.trainable, 20 + 16);
  EXPECT_DOUBLE_EQ(n.active_per_token, 20 + 3 + 4);
}

TEST(Stats, PercentilesInterpolateBetweenRanks) {
  const Summary s = summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.p50, 3.0);
  EXPECT_DOUBLE_EQ(s.p95, 4.8);
  EXPECT_DOUBLE_EQ(s.max, 5.0);
  EXPECT_EQ(summarize({}).count, 0);
}

}  // namespace
}  // namespace ellm
