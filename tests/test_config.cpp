// Job files (src/config): every class of bad input gives one exact message; good input gives
// fully resolved runs. docs/JOBS.md describes the format these tests pin down.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "efficientllm/config.hpp"

namespace ellm {
namespace {

namespace fs = std::filesystem;

// Error tests parse text under this name: it only appears in messages (no corpus involved).
const fs::path kJobFile = "jobs/x.json";

const std::string kModelKeys =
    "vocab_size, n_layers, d_model, n_heads, d_ff, seq_len, norm, activation, positions, "
    "rope_base, norm_eps, init_std, attention, n_kv_heads, window, mla_kv_latent, mla_q_latent, "
    "mla_rope_dim, nsa_block, nsa_stride, nsa_select_block, nsa_select_n, nsa_window";
const std::string kTrainingKeys =
    "steps, batch_size, lr, min_lr, warmup_steps, weight_decay, beta1, beta2, adam_eps, "
    "grad_clip, seed, eval_every, eval_batches, log_every, warmup_iters";

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const JobError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no JobError thrown";
  return "";
}

std::string parse_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  std::vector<Override> overrides;
  for (const std::string& set : sets) overrides.push_back(parse_override(set));
  return error_of([&] { parse_job(text, kJobFile, overrides); });
}

// A fresh directory per test for job and corpus files.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ellm_test_config_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& relative, const std::string& content) {
    const fs::path path = dir_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
    return path;
  }

  fs::path dir_;
};

// ---- one message per class of bad value: {test name, job text, what()} ----

struct BadJob {
  std::string name, job, expected;
};

class BadJobTest : public ::testing::TestWithParam<BadJob> {};

TEST_P(BadJobTest, ReportsExactlyThisMessage) {
  EXPECT_EQ(parse_error(GetParam().job), "jobs/x.json: " + GetParam().expected);
}

const BadJob kBadJobs[] = {
    {"InvalidJson", "{\n  \"name\": \"x\",\n  oops\n}",
     "invalid JSON at line 3, column 3: syntax error while parsing object key - invalid literal; "
     "last read: '\"x\",<U+000A>  o'; expected string literal"},
    {"NumberTooLarge", R"({"name": "x", "defaults": {"training": {"lr": 1e400}}})",
     "invalid JSON: number overflow parsing '1e400'"},
    {"RepeatedKey", R"({"name": "x", "defaults": {"training": {"lr": 0.1, "lr": 0.2}}})",
     "/defaults/training/lr: repeated key; a key may appear only once"},
    {"RepeatedKeyInArray", R"({"name": "x", "runs": [{"name": "a"}, {"name": "b", "name": "c"}]})",
     "/runs/1/name: repeated key; a key may appear only once"},
    {"NotAnObject", "[1, 2]", "a job file must hold a JSON object, got array [1,2]"},
    {"MissingName", R"({"defaults": {}})", "missing required key \"name\""},
    {"BadJobName", R"({"name": "my job"})",
     "/name: must match [A-Za-z0-9_.-]+ and not be \".\" or \"..\"; got \"my job\""},
    {"UnknownTopLevelKey", R"({"name": "x", "defualts": {}})",
     "/defualts: unknown key; did you mean \"defaults\"? (allowed: name, description, defaults, "
     "runs, grid)"},
    {"UnknownSection", R"({"name": "x", "runs": [{"name": "a", "modle": {}}]})",
     "/runs/0/modle: unknown key; did you mean \"model\"? (allowed: name, model, training, data, "
     "parallel, topology, metrics)"},
    {"UnknownKeyWithSuggestion", R"({"name": "x", "defaults": {"model": {"n_layer": 2}}})",
     "/defaults/model/n_layer: unknown key; did you mean \"n_layers\"? (allowed: " + kModelKeys +
         ")"},
    {"UnknownKeyFarFromAll", R"({"name": "x", "defaults": {"model": {"colour": 2}}})",
     "/defaults/model/colour: unknown key (allowed: " + kModelKeys + ")"},
    {"SectionNotObject", R"({"name": "x", "defaults": {"model": [1]}})",
     "/defaults/model: must be an object, got array [1]"},
    {"StringForInteger", R"({"name": "x", "runs": [{"name": "a", "training": {"steps": "ten"}}]})",
     "/runs/0/training/steps: must be an integer, got string \"ten\""},
    {"FloatForInteger", R"({"name": "x", "defaults": {"training": {"steps": 10.0}}})",
     "/defaults/training/steps: must be an integer, got number 10.0"},
    {"BoolForNumber", R"({"name": "x", "defaults": {"training": {"lr": true}}})",
     "/defaults/training/lr: must be a number, got boolean true"},
    {"BelowOpenBound", R"({"name": "x", "defaults": {"training": {"lr": -0.001}}})",
     "/defaults/training/lr: must be > 0, got -0.001"},
    {"BelowClosedBound", R"({"name": "x", "defaults": {"training": {"seed": -1}}})",
     "/defaults/training/seed: must be >= 0, got -1"},
    {"OutsideHalfOpenInterval", R"({"name": "x", "defaults": {"training": {"beta2": 1}}})",
     "/defaults/training/beta2: must be in [0, 1), got 1"},
    {"OutsideClosedInterval", R"({"name": "x", "defaults": {"model": {"n_layers": 2000}}})",
     "/defaults/model/n_layers: must be in [1, 1024], got 2000"},
    {"ValFraction", R"({"name": "x", "defaults": {"data": {"val_fraction": 0.7}}})",
     "/defaults/data/val_fraction: must be in (0, 0.5], got 0.7"},
    {"VocabSize", R"({"name": "x", "defaults": {"model": {"vocab_size": 512}}})",
     "/defaults/model/vocab_size: must be 256 (the vocabulary is byte-level), got 512"},
    {"IntegerOverflow", R"({"name": "x", "defaults": {"training": {"steps": 3000000000}}})",
     "/defaults/training/steps: must be <= 2147483647, got 3000000000"},
    {"UnknownEnumName", R"({"name": "x", "defaults": {"model": {"norm": "batchnorm"}}})",
     "/defaults/model/norm: must be one of \"layernorm\", \"rmsnorm\"; got \"batchnorm\""},
    {"EnumOfWrongType", R"({"name": "x", "defaults": {"model": {"positions": 3}}})",
     "/defaults/model/positions: must be one of \"learned\", \"rope\", \"sinusoidal\", \"alibi\", "
     "\"none\"; got number 3"},
    {"KvHeadsDoNotDivideHeads", R"({"name": "x", "defaults": {"model": {"n_kv_heads": 4}}})",
     "/defaults/model/n_kv_heads: n_heads (6) must be divisible by n_kv_heads (4); 0 means "
     "n_kv_heads = n_heads (MHA)"},
    {"MlaWithKvHeads",
     R"({"name": "x", "defaults": {"model": {"attention": "mla", "positions": "rope", "n_kv_heads": 2}}})",
     "/defaults/model/n_kv_heads: MLA has no kv heads of its own (its keys and values come from one "
     "latent): leave n_kv_heads at 0"},
    {"WindowOutsideGqa", R"({"name": "x", "defaults": {"model": {"attention": "nsa", "window": 64}}})",
     "/defaults/model/window: window applies to attention \"gqa\" (sliding-window attention); "
     "NSA's window branch is nsa_window"},
    {"AlibiOutsideGqa", R"({"name": "x", "runs": [{"name": "a", "model": {"attention": "nsa", "positions": "alibi"}}]})",
     "/runs/0/model/positions: positions \"alibi\" is supported with attention \"gqa\" only"},
    {"MlaWithoutRope", R"({"name": "x", "defaults": {"model": {"attention": "mla"}}})",
     "/defaults/model/attention: attention \"mla\" uses decoupled RoPE: positions must be \"rope\""},
    {"MlaOddRopeDim",
     R"({"name": "x", "defaults": {"model": {"attention": "mla", "positions": "rope", "mla_rope_dim": 5}}})",
     "/defaults/model/mla_rope_dim: mla_rope_dim (5) must be even: RoPE rotates pairs"},
    {"NsaBlockNotMultipleOfStride",
     R"({"name": "x", "defaults": {"model": {"attention": "nsa", "nsa_block": 30}}})",
     "/defaults/model/nsa_block: nsa_block (30) must be a multiple of nsa_stride (16): compression "
     "blocks overlap by whole strides"},
    {"NsaSelectBlockNotMultipleOfStride",
     R"({"name": "x", "defaults": {"model": {"attention": "nsa", "nsa_select_block": 40}}})",
     "/defaults/model/nsa_select_block: nsa_select_block (40) must be a multiple of nsa_stride (16) "
     "to map compressed scores onto selection blocks"},
    {"NsaTooFewSelected", R"({"name": "x", "defaults": {"model": {"attention": "nsa", "nsa_select_n": 2}}})",
     "/defaults/model/nsa_select_n: nsa_select_n (2) must be at least 3: the first block and two "
     "local blocks are always selected"},
    {"HeadsDoNotDivideModel",
     R"({"name": "x", "runs": [{"name": "a"}, {"name": "b", "model": {"n_heads": 5}}]})",
     "/runs/1/model/n_heads: d_model (384) must be divisible by n_heads (5)"},
    {"OddRopeHeadDim",
     R"({"name": "x", "defaults": {"model": {"positions": "rope", "d_model": 18, "n_heads": 2}}})",
     "/defaults/model/n_heads: with positions \"rope\" the head dimension d_model / n_heads "
     "(18 / 2 = 9) must be even"},
    {"MinLrAboveLr", R"({"name": "x", "defaults": {"training": {"min_lr": 0.01}}})",
     "/defaults/training/min_lr: min_lr (0.01) must be <= lr (0.001)"},
    {"WarmupLongerThanTraining", R"({"name": "x", "defaults": {"training": {"steps": 10}}})",
     "/defaults/training/steps: warmup_steps (20) must be <= steps (10)"},
    {"NoMeasuredStep",
     R"({"name": "x", "defaults": {"training": {"steps": 3, "warmup_steps": 0}}})",
     "/defaults/training/steps: warmup_iters (3) must be < steps (3) so that at least one step is "
     "measured"},
    {"TpWithMla",
     R"({"name": "x", "defaults": {"model": {"attention": "mla", "positions": "rope"}, "parallel": {"tp": 2}}})",
     "/defaults/parallel/tp: tensor parallelism (tp = 2) supports attention \"gqa\" (MHA, GQA, MQA) "
     "only; MLA and NSA need tp = 1"},
    {"TpDoesNotDivideHeads", R"({"name": "x", "defaults": {"parallel": {"tp": 4}}})",
     "/defaults/parallel/tp: n_heads (6) must be divisible by tp (4)"},
    {"TpDoesNotDivideDff",
     R"({"name": "x", "defaults": {"model": {"n_heads": 8, "n_kv_heads": 2, "d_ff": 1001}, "parallel": {"tp": 8}}})",
     "/defaults/parallel/tp: d_ff (1001) must be divisible by tp (8)"},
    {"TpKvHeadsNeitherDivides",
     R"({"name": "x", "defaults": {"model": {"n_heads": 12, "n_kv_heads": 3, "d_model": 384}, "parallel": {"tp": 2}}})",
     "/defaults/parallel/tp: kv heads (3) and tp (2) must divide one another: each rank keeps whole "
     "kv heads, or one replicated over tp / kv ranks"},
    {"BatchNotDivisibleByDp",
     R"({"name": "x", "defaults": {"training": {"batch_size": 6}, "parallel": {"dp": 4}}})",
     "/defaults/training/batch_size: batch_size (6) must be divisible by parallel.dp (4)"},
    {"BlamesTheRunOverDefaults",
     R"({"name": "x", "defaults": {"training": {"batch_size": 6}},
         "runs": [{"name": "a", "parallel": {"dp": 4}}]})",
     "/runs/0/parallel/dp: batch_size (6) must be divisible by parallel.dp (4)"},
    {"RunsAndGrid", R"({"name": "x", "runs": [{"name": "a"}], "grid": {"model.n_layers": [1]}})",
     "/grid: \"runs\" and \"grid\" cannot be combined; give one of them (or neither for a single "
     "run)"},
    {"EmptyRuns", R"({"name": "x", "runs": []})",
     "/runs: must be a non-empty array of run objects, got array []"},
    {"RunNotObject", R"({"name": "x", "runs": ["a"]})",
     "/runs/0: must be an object, got string \"a\""},
    {"RunWithoutName", R"({"name": "x", "runs": [{"name": "a"}, {"model": {}}]})",
     "/runs/1: missing required key \"name\" (every run in \"runs\" needs a unique name)"},
    {"DuplicateRunName", R"({"name": "x", "runs": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})",
     "/runs/2/name: duplicate run name \"a\" (first used at /runs/0/name)"},
    {"NameInDefaults", R"({"name": "x", "defaults": {"name": "a"}})",
     "/defaults/name: unknown key (allowed: model, training, data, parallel, topology, metrics)"},
    {"GridNotObject", R"({"name": "x", "grid": []})",
     "/grid: must be a non-empty object mapping run fields to arrays of values, got array []"},
    {"GridKeyNotDotted", R"({"name": "x", "grid": {"model": [1]}})",
     "/grid/model: must name a run field as SECTION.KEY, such as \"model.n_layers\""},
    {"GridUnknownSection", R"({"name": "x", "grid": {"modle.n_layers": [1]}})",
     "/grid/modle.n_layers: unknown section; did you mean \"model\"? (allowed: model, training, "
     "data, parallel, topology, metrics)"},
    {"GridUnknownField", R"({"name": "x", "grid": {"parallel.pd": [1]}})",
     "/grid/parallel.pd: unknown field; did you mean \"parallel.dp\"? (allowed: parallel.dp, "
     "parallel.tp, parallel.bucket_mib, parallel.overlap, parallel.zero1, "
     "parallel.sequence_parallel)"},
    {"SequenceParallelSplitsTokens",
     R"({"name": "x", "defaults": {"model": {"seq_len": 255}, "parallel": {"tp": 2, "sequence_parallel": true}}})",
     "/defaults/parallel/sequence_parallel: sequence parallelism splits every sequence's tokens over the "
     "tp ranks: seq_len (255) must be divisible by tp (2)"},
    {"BoolField", R"({"name": "x", "defaults": {"parallel": {"zero1": 1}}})",
     "/defaults/parallel/zero1: must be true or false, got number 1"},
    {"PolicyNotAChoice", R"({"name": "x", "defaults": {"topology": {"policy": "spread"}}})",
     "/defaults/topology/policy: must be one of \"inherit\", \"compact\", \"scatter\"; got \"spread\""},
    {"SamplePeriodTooLong", R"({"name": "x", "defaults": {"metrics": {"sample_period_ms": 90000}}})",
     "/defaults/metrics/sample_period_ms: must be in [0, 60000] (0 turns sampling off; energy counters "
     "need a read every 60 s), got 90000"},
    {"PowerModelHalfSet", R"({"name": "x", "defaults": {"metrics": {"p_max_w": 200}}})",
     "/defaults/metrics/p_max_w: p_idle_w (0) and p_max_w (200) must both be 0 (the CPU model's "
     "defaults) or satisfy 0 < p_idle_w <= p_max_w"},
    {"PowerModelIdleAboveMax", R"({"name": "x", "runs": [{"name": "a", "metrics": {"p_idle_w": 300, "p_max_w": 200}}]})",
     "/runs/0/metrics/p_max_w: p_idle_w (300) and p_max_w (200) must both be 0 (the CPU model's "
     "defaults) or satisfy 0 < p_idle_w <= p_max_w"},
    {"GridValuesNotArray", R"({"name": "x", "grid": {"model.n_layers": 2}})",
     "/grid/model.n_layers: must be a non-empty array of values, got number 2"},
    {"GridBadValue", R"({"name": "x", "grid": {"model.n_layers": [2, 0]}})",
     "/grid/model.n_layers/1: must be in [1, 1024], got 0"},
    {"GridRepeatedValue", R"({"name": "x", "grid": {"model.norm": ["rmsnorm", "rmsnorm"]}})",
     "/grid/model.norm/1: repeats \"rmsnorm\"; grid values must differ (they name the runs)"},
    {"GridTooLarge", R"({"name": "x", "grid": {"training.steps": [1,2,3,4,5,6,7,8,9,10,11],
       "training.batch_size": [1,2,3,4,5,6,7,8,9,10,11], "training.seed": [1,2,3,4,5,6,7,8,9,10,11],
       "training.log_every": [1,2,3,4,5,6,7,8,9,10,11]}})",
     "/grid: expands to more than 10000 runs; split it into several jobs"},
    // Keys are checked in the order they are written, not sorted: "steps" comes first here.
    {"FirstInDocumentOrder",
     R"({"name": "x", "runs": [{"name": "a", "training": {"steps": 0}}],
         "defaults": {"training": {"batch_size": 0}}})",
     "/runs/0/training/steps: must be >= 1, got 0"},
};

INSTANTIATE_TEST_SUITE_P(Config, BadJobTest, ::testing::ValuesIn(kBadJobs),
                         [](const auto& info) { return info.param.name; });

// ---- file-level errors ----

TEST_F(TempDir, MissingFile) {
  const fs::path file = dir_ / "missing.json";
  EXPECT_EQ(error_of([&] { load_job(file); }),
            file.string() + ": cannot read file: No such file or directory");
}

TEST_F(TempDir, DirectoryInsteadOfFile) {
  EXPECT_EQ(error_of([&] { load_job(dir_); }),
            dir_.string() + ": cannot read file: Is a directory");
}

TEST_F(TempDir, CorpusFileProblems) {
  write("empty.txt", "");
  write("sub/keep.txt", "x");
  const auto corpus_error = [&](const std::string& corpus) {
    return error_of([&] {
      parse_job(R"({"name": "x", "defaults": {"data": {"corpus": )" + corpus + "}}}",
                dir_ / "job.json");
    });
  };
  const std::string file = (dir_ / "job.json").string();
  write("a.txt", "hello");
  EXPECT_EQ(corpus_error(R"(["a.txt", "missing.txt"])"),
            file + ": /defaults/data/corpus/1: cannot read corpus file \"" +
                (dir_ / "missing.txt").string() + "\": No such file or directory");
  EXPECT_EQ(corpus_error(R"("empty.txt")"), file + ": /defaults/data/corpus: corpus file \"" +
                                                (dir_ / "empty.txt").string() + "\" is empty");
  EXPECT_EQ(corpus_error(R"(["sub"])"), file + ": /defaults/data/corpus/0: corpus file \"" +
                                            (dir_ / "sub").string() + "\" is not a regular file");
  EXPECT_EQ(corpus_error("[]"), file +
                                    ": /defaults/data/corpus: must be a file path or a "
                                    "non-empty array of file paths, got array []");
  EXPECT_EQ(corpus_error(R"(["a.txt", 7])"),
            file + ": /defaults/data/corpus/1: must be a non-empty file path, got number 7");
}

// ---- --set ----

TEST(ParseOverride, SplitsAtTheFirstEquals) {
  const Override parsed = parse_override("data.corpus=a=b.txt");
  EXPECT_EQ(parsed.path, "data.corpus");
  EXPECT_EQ(parsed.value, "a=b.txt");
}

TEST(ParseOverride, RejectsTextWithoutPathAndValue) {
  const std::string expected = "--set: expected PATH=VALUE such as training.steps=50, got ";
  EXPECT_EQ(error_of([] { parse_override("training.steps"); }), expected + "\"training.steps\"");
  EXPECT_EQ(error_of([] { parse_override("=5"); }), expected + "\"=5\"");
  EXPECT_EQ(error_of([] { parse_override("training..steps=5"); }),
            expected + "\"training..steps=5\"");
}

TEST(Overrides, BadValueNamesWhereItLanded) {
  EXPECT_EQ(
      parse_error(R"({"name": "x"})", {"training.steps=ten"}),
      "jobs/x.json: /defaults/training/steps: must be an integer, got string \"ten\" (from --set)");
  EXPECT_EQ(parse_error(R"({"name": "x", "runs": [{"name": "a"}]})", {"training.step=5"}),
            "jobs/x.json: /runs/0/training/step: unknown key; did you mean \"steps\"? (allowed: " +
                kTrainingKeys + ") (from --set)");
  EXPECT_EQ(
      parse_error(R"({"name": "x", "grid": {"model.n_layers": [2, 4]}})", {"model.n_layers=0"}),
      "jobs/x.json: /grid/model.n_layers/0: must be in [1, 1024], got 0 (from --set)");
  EXPECT_EQ(
      parse_error(R"({"name": "x"})", {"parallel.dp=3"}),
      "jobs/x.json: /defaults/parallel/dp: batch_size (8) must be divisible by parallel.dp (3) "
      "(from --set)");
}

TEST(Overrides, WinOverDefaultsAndEveryRun) {
  const Job job = parse_job(
      R"({"name": "x", "defaults": {"training": {"steps": 10}},
      "runs": [{"name": "a"}, {"name": "b", "training": {"steps": 20}}]})",
      kJobFile, {parse_override("training.steps=50"), parse_override("model.norm=rmsnorm")});
  for (const RunConfig& run : job.runs) {
    EXPECT_EQ(run.training.steps, 50);
    EXPECT_EQ(run.model.norm, Norm::RMSNorm);
  }
}

TEST(Overrides, ReplaceAGridAxis) {
  const Job job = parse_job(
      R"({"name": "x", "grid": {"model.n_layers": [2, 4], "training.lr": [0.001, 0.0003]}})",
      kJobFile, {parse_override("model.n_layers=8")});
  ASSERT_EQ(job.runs.size(), 2u);
  EXPECT_EQ(job.runs[0].name, "n_layers=8,lr=0.001");
  EXPECT_EQ(job.runs[1].name, "n_layers=8,lr=0.0003");
  EXPECT_EQ(job.runs[1].model.n_layers, 8);
}

// ---- good jobs ----

TEST(GoodJob, NoRunsOrGridIsOneRunOfDefaultsNamedAfterTheJob) {
  const Job job = parse_job(R"({"name": "quick", "description": "d"})", kJobFile);
  EXPECT_EQ(job.name, "quick");
  EXPECT_EQ(job.description, "d");
  EXPECT_EQ(job.file, kJobFile);
  ASSERT_EQ(job.runs.size(), 1u);
  const RunConfig& run = job.runs[0];
  EXPECT_EQ(run.name, "quick");
  EXPECT_EQ(run.model.d_model, ModelConfig{}.d_model);
  EXPECT_EQ(run.training.lr, TrainingConfig{}.lr);
  EXPECT_EQ(run.as_json, nlohmann::json::parse(R"({
    "name": "quick",
    "model": {"vocab_size": 256, "n_layers": 6, "d_model": 384, "n_heads": 6, "d_ff": 1536,
              "seq_len": 256, "norm": "layernorm", "activation": "gelu", "positions": "learned",
              "rope_base": 10000.0, "norm_eps": 1e-5, "init_std": 0.02, "attention": "gqa",
              "n_kv_heads": 0, "window": 0, "mla_kv_latent": 128, "mla_q_latent": 0,
              "mla_rope_dim": 16, "nsa_block": 32, "nsa_stride": 16, "nsa_select_block": 64,
              "nsa_select_n": 16, "nsa_window": 512},
    "training": {"steps": 200, "batch_size": 8, "lr": 0.001, "min_lr": 0.0001, "warmup_steps": 20,
                 "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8,
                 "grad_clip": 1.0, "seed": 1234, "eval_every": 50, "eval_batches": 8,
                 "log_every": 10, "warmup_iters": 3},
    "data": {"corpus": ["/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
                        "/usr/share/games/fortunes/wisdom", "/usr/share/games/fortunes/people",
                        "/usr/share/games/fortunes/humorists", "/usr/share/games/fortunes/science"],
             "val_fraction": 0.05},
    "parallel": {"dp": 1, "tp": 1, "bucket_mib": 1.0, "overlap": true, "zero1": false,
                 "sequence_parallel": false},
    "topology": {"policy": "inherit"},
    "metrics": {"sample_period_ms": 100, "p_idle_w": 0.0, "p_max_w": 0.0}})"));
}

TEST(GoodJob, RunsAreDeepMergedOverDefaults) {
  const Job job = parse_job(R"({"name": "x",
      "defaults": {"model": {"n_layers": 2, "d_model": 64, "n_heads": 2, "positions": "rope"}},
      "runs": [{"name": "a"}, {"name": "b", "model": {"n_layers": 4, "activation": "swiglu"}}]})",
                            kJobFile);
  ASSERT_EQ(job.runs.size(), 2u);
  EXPECT_EQ(job.runs[0].name, "a");
  EXPECT_EQ(job.runs[0].model.n_layers, 2);
  EXPECT_EQ(job.runs[0].model.activation, Activation::GELU);
  EXPECT_EQ(job.runs[1].name, "b");
  EXPECT_EQ(job.runs[1].model.n_layers, 4);
  EXPECT_EQ(job.runs[1].model.d_model, 64);
  EXPECT_EQ(job.runs[1].model.positions, Positions::RoPE);
  EXPECT_EQ(job.runs[1].model.activation, Activation::SwiGLU);
  EXPECT_EQ(job.runs[1].as_json["model"]["activation"], "swiglu");
}

TEST(GoodJob, GridIsACartesianProductFirstKeySlowest) {
  const Job job = parse_job(R"({"name": "x", "defaults": {"model": {"n_layers": 1}},
      "grid": {"training.lr": [0.001, 0.0003], "model.n_layers": [2, 4], "model.norm": ["rmsnorm"]}})",
                            kJobFile);
  std::vector<std::string> names;
  for (const RunConfig& run : job.runs) names.push_back(run.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "lr=0.001,n_layers=2,norm=rmsnorm", "lr=0.001,n_layers=4,norm=rmsnorm",
                       "lr=0.0003,n_layers=2,norm=rmsnorm", "lr=0.0003,n_layers=4,norm=rmsnorm"}));
  EXPECT_EQ(job.runs[2].training.lr, 0.0003);
  EXPECT_EQ(job.runs[2].model.n_layers, 2);
  EXPECT_EQ(job.runs[2].model.norm, Norm::RMSNorm);
}

TEST(GoodJob, LargestSeedFits) {
  const Job job = parse_job(
      R"({"name": "x", "defaults": {"training": {"seed": 18446744073709551615}}})", kJobFile);
  EXPECT_EQ(job.runs[0].training.seed, 18446744073709551615u);
}

TEST_F(TempDir, CorpusPathsAreRelativeToTheJobFile) {
  const fs::path corpus = write("data/a.txt", "hello");
  write("jobs/b.txt", "world");
  const std::string absolute = nlohmann::json(corpus.string()).dump();
  const fs::path job_file = write("jobs/x.json", R"({"name": "x", "runs": [
      {"name": "one", "data": {"corpus": "../data/a.txt"}},
      {"name": "two", "data": {"corpus": ["b.txt", )" + absolute + "]}}]}");
  const Job job = load_job(job_file);
  EXPECT_EQ(job.runs[0].data.corpus, std::vector<fs::path>{corpus});
  EXPECT_EQ(job.runs[1].data.corpus, (std::vector<fs::path>{dir_ / "jobs/b.txt", corpus}));
  EXPECT_EQ(job.runs[1].as_json["data"]["corpus"],
            nlohmann::json::array({(dir_ / "jobs/b.txt").string(), corpus.string()}));
}

}  // namespace
}  // namespace ellm
