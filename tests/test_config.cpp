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
    "vocab_size, n_layers, d_model, n_heads, d_ff, seq_len, norm, activation, wiring, positions, "
    "rope_base, rotary_pct, norm_eps, init_std, bias, tie_embeddings, from_hf, init_from, attention, n_kv_heads, window, mla_kv_latent, "
    "mla_q_latent, mla_rope_dim, nsa_block, nsa_stride, nsa_select_block, nsa_select_n, "
    "nsa_window, mlp, moe_experts, moe_top_k, moe_shared_experts, moe_d_ff, moe_renormalize, "
    "moe_aux_coeff, moe_z_coeff, moe_capacity_factor, token_mixer, mamba_d_state, mamba_expand, "
    "mamba_d_conv, mamba_dt_rank, mamba_chunk, rwkv_head_size, rwkv_chunk, rwkv_mix_lora, "
    "rwkv_decay_lora, layer_pattern, layer_overrides";
// The block fields: what an entry of model.layer_pattern or model.layer_overrides may set.
const std::string kBlockKeys =
    "d_ff, activation, wiring, rotary_pct, attention, n_kv_heads, window, mla_kv_latent, "
    "mla_q_latent, mla_rope_dim, nsa_block, nsa_stride, nsa_select_block, nsa_select_n, "
    "nsa_window, mlp, moe_experts, moe_top_k, moe_shared_experts, moe_d_ff, moe_renormalize, "
    "moe_aux_coeff, moe_z_coeff, moe_capacity_factor, token_mixer, mamba_d_state, mamba_expand, "
    "mamba_d_conv, mamba_dt_rank, mamba_chunk, rwkv_head_size, rwkv_chunk, rwkv_mix_lora, "
    "rwkv_decay_lora";
const std::string kTrainingKeys =
    "steps, batch_size, lr, min_lr, warmup_steps, weight_decay, beta1, beta2, adam_eps, "
    "grad_clip, seed, eval_every, eval_batches, log_every, warmup_iters, export_hf";

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
     "parallel, topology, metrics, checkpoint, inference, finetune)"},
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
    {"VocabSize", R"({"name": "x", "defaults": {"model": {"vocab_size": 1}}})",
     "/defaults/model/vocab_size: must be in [2, 16777216], got 1"},
    {"DataFormat", R"({"name": "x", "defaults": {"data": {"format": "parquet"}}})",
     "/defaults/data/format: must be one of \"text\", \"tokens\", \"instructions\"; got \"parquet\""},
    {"TokenizerShape", R"({"name": "x", "defaults": {"data": {"tokenizer": "bpe"}}})",
     "/defaults/data/tokenizer: must be \"bytes\" or {\"sentencepiece\": \"path/tokenizer.model\"}, got string \"bpe\""},
    {"TokenizerMissing", R"({"name": "x", "defaults": {"data": {"tokenizer": {"sentencepiece": "/nonexistent/t.model"}}}})",
     "/defaults/data/tokenizer/sentencepiece: cannot read SentencePiece model \"/nonexistent/t.model\": No such file or directory"},
    {"TokenizerWithTokenFiles", R"({"name": "x", "defaults": {"data": {"format": "tokens", "tokenizer": {"sentencepiece": "/etc/hostname"}}}})",
     "/defaults/data/tokenizer: a token file carries its own vocabulary in its header: data.tokenizer applies to formats \"text\" and \"instructions\" only"},
    {"BiasWithMoE", R"({"name": "x", "defaults": {"model": {"bias": "none", "mlp": "moe"}}})",
     "/defaults/model/bias: bias \"none\" and \"qkv\" are supported with attention \"gqa\" "
     "and mlp \"dense\" only"},
    {"FromHfNotAString", R"({"name": "x", "defaults": {"model": {"from_hf": 3}}})",
     "/defaults/model/from_hf: must be a path (a string), got number 3"},
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
    {"UnknownTokenMixer", R"({"name": "x", "defaults": {"model": {"token_mixer": "s4"}}})",
     "/defaults/model/token_mixer: must be one of \"attention\", \"mamba\", \"rwkv6\"; got \"s4\""},
    {"MambaChunkZero", R"({"name": "x", "defaults": {"model": {"token_mixer": "mamba", "mamba_chunk": 0}}})",
     "/defaults/model/mamba_chunk: must be >= 1, got 0"},
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
    {"TpNsaKvHeadsNotDivisible",
     R"({"name": "x", "defaults": {"model": {"attention": "nsa", "n_heads": 8, "n_kv_heads": 2}, "parallel": {"tp": 4}}})",
     "/defaults/parallel/tp: with attention \"nsa\" the kv heads (2) must be divisible by tp (4): "
     "each rank keeps whole kv groups (NSA's selection is per group, so kv heads are not "
     "replicated)"},
    {"MoeTopKAboveExperts",
     R"({"name": "x", "defaults": {"model": {"mlp": "moe", "moe_experts": 2, "moe_top_k": 3}}})",
     "/defaults/model/moe_top_k: moe_top_k (3) must be at most moe_experts (2): each token goes "
     "to that many different experts"},
    {"MoeWithTensorParallelism",
     R"({"name": "x", "defaults": {"model": {"mlp": "moe", "n_heads": 4}, "parallel": {"tp": 2}}})",
     "/defaults/parallel/tp: mixture-of-experts layers run with tp = 1 (tensor parallelism inside "
     "experts is not supported); got tp = 2"},
    {"RwkvHeadSizeDoesNotDivideWidth",
     R"({"name": "x", "defaults": {"model": {"token_mixer": "rwkv6", "rwkv_head_size": 80}}})",
     "/defaults/model/rwkv_head_size: d_model (384) must be divisible by rwkv_head_size (80): "
     "RWKV-6 splits the width into heads of that size"},
    {"RwkvHeadsNotDivisibleByTp",
     R"({"name": "x", "defaults": {"model": {"token_mixer": "rwkv6", "layer_overrides": {"1": {"rwkv_head_size": 128}}}, "parallel": {"tp": 2}}})",
     "/defaults/model/layer_overrides/1/rwkv_head_size: layer 1: with token_mixer \"rwkv6\" the heads "
     "d_model / rwkv_head_size (3) must be divisible by tp (2): each rank keeps whole heads"},
    {"RwkvChunkTooLong",
     R"({"name": "x", "defaults": {"model": {"rwkv_chunk": 512}}})",
     "/defaults/model/rwkv_chunk: must be in [1, 256], got 512"},
    {"EpDoesNotDivideDp",
     R"({"name": "x", "defaults": {"model": {"mlp": "moe"}, "parallel": {"dp": 2, "ep": 4}}})",
     "/defaults/parallel/ep: ep (4) must divide dp (2): the expert-parallel ranks are "
     "data-parallel ranks sharing out the experts"},
    {"EpWithZero1",
     R"({"name": "x", "defaults": {"model": {"mlp": "moe"}, "parallel": {"dp": 2, "ep": 2, "zero1": true}}})",
     "/defaults/parallel/zero1: ZeRO-1 is not supported with expert parallelism (ep > 1); set one "
     "of them off"},
    {"EpExpertsNotDivisibleInOneLayer",
     R"({"name": "x", "defaults": {"model": {"layer_pattern": [{}, {"mlp": "moe", "moe_experts": 3}]}, "parallel": {"dp": 2, "ep": 2}}})",
     "/defaults/model/layer_pattern/1/moe_experts: layer 1: moe_experts (3) must be divisible by "
     "ep (2): each expert-parallel rank holds the same number of experts"},
    {"EpWithoutExperts", R"({"name": "x", "defaults": {"parallel": {"dp": 2, "ep": 2}}})",
     "/defaults/parallel/ep: ep (2) needs a mixture-of-experts layer (model.mlp = \"moe\")"},
    {"TpDoesNotDivideHeads", R"({"name": "x", "defaults": {"parallel": {"tp": 4}}})",
     "/defaults/parallel/tp: n_heads (6) must be divisible by tp (4)"},
    {"TpDoesNotDivideDff",
     R"({"name": "x", "defaults": {"model": {"n_heads": 8, "n_kv_heads": 2, "d_ff": 1001}, "parallel": {"tp": 8}}})",
     "/defaults/parallel/tp: d_ff (1001) must be divisible by tp (8)"},
    {"TpKvHeadsNeitherDivides",
     R"({"name": "x", "defaults": {"model": {"n_heads": 12, "n_kv_heads": 3, "d_model": 384}, "parallel": {"tp": 2}}})",
     "/defaults/parallel/tp: kv heads (3) and tp (2) must divide one another: each rank keeps whole "
     "kv heads, or one replicated over tp / kv ranks"},
    {"WiringNotAChoice", R"({"name": "x", "defaults": {"model": {"wiring": "residual"}}})",
     "/defaults/model/wiring: must be one of \"sequential\", \"parallel\"; got \"residual\""},
    {"RotaryPctZero", R"({"name": "x", "defaults": {"model": {"rotary_pct": 0}}})",
     "/defaults/model/rotary_pct: must be in (0, 1], got 0"},
    {"RotaryPctAboveOne", R"({"name": "x", "runs": [{"name": "a", "model": {"rotary_pct": 1.5}}]})",
     "/runs/0/model/rotary_pct: must be in (0, 1], got 1.5"},
    {"OddRotaryDim", R"({"name": "x", "defaults": {"model": {"positions": "rope", "rotary_pct": 0.3}}})",
     "/defaults/model/rotary_pct: with positions \"rope\" the rotary dimension int(head_dim * "
     "rotary_pct) (int(64 * 0.3) = 19) must be even and at least 2: RoPE rotates pairs"},
    {"NoRotaryDim", R"({"name": "x", "defaults": {"model": {"positions": "rope", "rotary_pct": 0.01}}})",
     "/defaults/model/rotary_pct: with positions \"rope\" the rotary dimension int(head_dim * "
     "rotary_pct) (int(64 * 0.01) = 0) must be even and at least 2: RoPE rotates pairs"},
    // ---- model.layer_pattern and model.layer_overrides ----
    {"PatternNotArray", R"({"name": "x", "defaults": {"model": {"layer_pattern": {"attention": "mla"}}}})",
     "/defaults/model/layer_pattern: must be a non-empty array of objects of block fields (layer l "
     "takes entry l % length), got object {\"attention\":\"mla\"}"},
    {"PatternEmpty", R"({"name": "x", "defaults": {"model": {"layer_pattern": []}}})",
     "/defaults/model/layer_pattern: must be a non-empty array of objects of block fields (layer l "
     "takes entry l % length), got array []"},
    {"PatternEntryNotObject", R"({"name": "x", "defaults": {"model": {"layer_pattern": [{}, "mla"]}}})",
     "/defaults/model/layer_pattern/1: must be an object of block fields, got string \"mla\""},
    {"PatternUnknownKey",
     R"({"name": "x", "defaults": {"model": {"layer_pattern": [{}, {"atention": "mla"}]}}})",
     "/defaults/model/layer_pattern/1/atention: unknown key; did you mean \"attention\"? (allowed: " +
         kBlockKeys + ")"},
    {"PatternModelWideKey",
     R"({"name": "x", "runs": [{"name": "a", "model": {"layer_pattern": [{"window": 8, "d_model": 128}]}}]})",
     "/runs/0/model/layer_pattern/0/d_model: model-wide key; it is the same in every layer, so set "
     "it in \"model\" itself (allowed per layer: " + kBlockKeys + ")"},
    {"PatternNestedPattern",
     R"({"name": "x", "defaults": {"model": {"layer_pattern": [{"layer_pattern": [{}]}]}}})",
     "/defaults/model/layer_pattern/0/layer_pattern: model-wide key; it is the same in every layer, "
     "so set it in \"model\" itself (allowed per layer: " + kBlockKeys + ")"},
    {"PatternBadEnum", R"({"name": "x", "defaults": {"model": {"layer_pattern": [{"attention": "mqa"}]}}})",
     "/defaults/model/layer_pattern/0/attention: must be one of \"gqa\", \"mla\", \"nsa\"; got "
     "\"mqa\""},
    {"OverridesNotObject", R"({"name": "x", "defaults": {"model": {"layer_overrides": [{}]}}})",
     "/defaults/model/layer_overrides: must be an object mapping layer numbers (\"0\", \"1\", ...) "
     "to objects of block fields, got array [{}]"},
    {"OverrideKeyNotIndex", R"({"name": "x", "defaults": {"model": {"layer_overrides": {"first": {}}}}})",
     "/defaults/model/layer_overrides/first: not a layer index; the keys of layer_overrides are "
     "layer numbers \"0\", \"1\", ... (decimal digits, no sign or leading zeros)"},
    {"OverrideKeyLeadingZero", R"({"name": "x", "defaults": {"model": {"layer_overrides": {"03": {}}}}})",
     "/defaults/model/layer_overrides/03: not a layer index; the keys of layer_overrides are "
     "layer numbers \"0\", \"1\", ... (decimal digits, no sign or leading zeros)"},
    {"OverrideKeyNegative", R"({"name": "x", "defaults": {"model": {"layer_overrides": {"-1": {}}}}})",
     "/defaults/model/layer_overrides/-1: not a layer index; the keys of layer_overrides are "
     "layer numbers \"0\", \"1\", ... (decimal digits, no sign or leading zeros)"},
    {"OverrideLayerOutOfRange",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"2": {}, "6": {"window": 8}}}}})",
     "/defaults/model/layer_overrides/6: layer 6 does not exist: n_layers is 6, so the layers are "
     "numbered 0 to 5"},
    {"OverrideLayerOutOfRangeForTheRun",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"3": {"window": 8}}}},
         "runs": [{"name": "a"}, {"name": "b", "model": {"n_layers": 2}}]})",
     "/defaults/model/layer_overrides/3: layer 3 does not exist: n_layers is 2, so the layers are "
     "numbered 0 to 1"},
    {"OverrideHugeLayer",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"99999999999": {}}}}})",
     "/defaults/model/layer_overrides/99999999999: layer 99999999999 does not exist: n_layers is 6, "
     "so the layers are numbered 0 to 5"},
    {"OverrideNotObject", R"({"name": "x", "defaults": {"model": {"layer_overrides": {"1": 64}}}})",
     "/defaults/model/layer_overrides/1: must be an object of block fields, got number 64"},
    {"OverrideModelWideKey",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"1": {"norm": "rmsnorm"}}}}})",
     "/defaults/model/layer_overrides/1/norm: model-wide key; it is the same in every layer, so set "
     "it in \"model\" itself (allowed per layer: " + kBlockKeys + ")"},
    {"OverrideValueOutOfRange",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"3": {"window": -1}}}}})",
     "/defaults/model/layer_overrides/3/window: must be >= 0, got -1"},
    {"OverrideValueWrongType",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"3": {"d_ff": 512.0}}}}})",
     "/defaults/model/layer_overrides/3/d_ff: must be an integer, got number 512.0"},
    {"OverrideBreaksAttentionRule",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"3": {"attention": "nsa", "window": 64}}}}})",
     "/defaults/model/layer_overrides/3/window: layer 3: window applies to attention \"gqa\" "
     "(sliding-window attention); NSA's window branch is nsa_window"},
    {"PatternBreaksAttentionRule",
     R"({"name": "x", "runs": [{"name": "a"}, {"name": "b", "model": {"layer_pattern": [{}, {}, {"attention": "mla"}]}}]})",
     "/runs/1/model/layer_pattern/2/attention: layer 2: attention \"mla\" uses decoupled RoPE: "
     "positions must be \"rope\""},
    {"PatternEntryBeatsModelLevelValueFromTheSamePlace",
     R"({"name": "x", "defaults": {"model": {"window": 64, "layer_pattern": [{}, {"attention": "nsa"}]}}})",
     "/defaults/model/layer_pattern/1/attention: layer 1: window applies to attention \"gqa\" "
     "(sliding-window attention); NSA's window branch is nsa_window"},
    {"ModelLevelValueOfTheRunBreaksALayer",
     R"({"name": "x", "defaults": {"model": {"layer_pattern": [{}, {"attention": "nsa"}]}},
         "runs": [{"name": "a", "model": {"window": 64}}]})",
     "/runs/0/model/window: layer 1: window applies to attention \"gqa\" (sliding-window "
     "attention); NSA's window branch is nsa_window"},
    {"OverrideBreaksALayerRule",
     R"({"name": "x", "defaults": {"model": {"positions": "rope", "layer_pattern": [{"attention": "mla"}],
         "layer_overrides": {"4": {"mla_rope_dim": 6}, "5": {"mla_rope_dim": 7}}}}})",
     "/defaults/model/layer_overrides/5/mla_rope_dim: layer 5: mla_rope_dim (7) must be even: RoPE "
     "rotates pairs"},
    {"PatternOddRotaryDim",
     R"({"name": "x", "defaults": {"model": {"positions": "rope", "layer_pattern": [{"rotary_pct": 0.25}, {"rotary_pct": 0.3}]}}})",
     "/defaults/model/layer_pattern/1/rotary_pct: layer 1: with positions \"rope\" the rotary "
     "dimension int(head_dim * rotary_pct) (int(64 * 0.3) = 19) must be even and at least 2: RoPE "
     "rotates pairs"},
    {"PatternGqaLayerNeedsEvenHeads",
     R"({"name": "x", "defaults": {"model": {"positions": "rope", "d_model": 18, "n_heads": 2, "attention": "mla",
         "layer_pattern": [{}, {"attention": "gqa"}]}}})",
     "/defaults/model/layer_pattern/1/attention: layer 1: with positions \"rope\" the head dimension "
     "d_model / n_heads (18 / 2 = 9) must be even"},
    {"PatternNsaLayerKvHeadsNotDivisibleByTp",
     R"({"name": "x", "defaults": {"model": {"n_heads": 8, "n_kv_heads": 2, "layer_pattern": [{}, {"attention": "nsa"}]},
         "parallel": {"tp": 4}}})",
     "/defaults/model/layer_pattern/1/attention: layer 1: with attention \"nsa\" the kv heads (2) "
     "must be divisible by tp (4): each rank keeps whole kv groups (NSA's selection is per group, so "
     "kv heads are not replicated)"},
    {"OverrideDffNotDivisibleByTp",
     R"({"name": "x", "defaults": {"model": {"layer_overrides": {"2": {"d_ff": 1001}}}, "parallel": {"tp": 2}}})",
     "/defaults/model/layer_overrides/2/d_ff: layer 2: d_ff (1001) must be divisible by tp (2)"},
    {"GridBadPattern", R"({"name": "x", "grid": {"model.layer_pattern": [[{}], [{"n_heads": 4}]]}})",
     "/grid/model.layer_pattern/1/0/n_heads: model-wide key; it is the same in every layer, so set "
     "it in \"model\" itself (allowed per layer: " + kBlockKeys + ")"},
    {"BatchNotDivisibleByDp",
     R"({"name": "x", "defaults": {"training": {"batch_size": 6}, "parallel": {"dp": 4}}})",
     "/defaults/training/batch_size: batch_size (6) must be divisible by parallel.dp (4)"},
    {"BlamesTheRunOverDefaults",
     R"({"name": "x", "defaults": {"training": {"batch_size": 6}},
         "runs": [{"name": "a", "parallel": {"dp": 4}}]})",
     "/runs/0/parallel/dp: batch_size (6) must be divisible by parallel.dp (4)"},
    {"MixerOnlyBlockWithParallelWiring",
     R"({"name": "x", "defaults": {"model": {"mlp": "none", "wiring": "parallel"}}})",
     "/defaults/model/mlp: a block without a channel mixer (mlp \"none\") has one branch: wiring "
     "must be \"sequential\""},
    {"RunSetsAGridField",
     R"({"name": "x", "runs": [{"name": "a"}, {"name": "b", "model": {"n_layers": 2}}],
         "grid": {"model.n_layers": [1]}})",
     "/runs/1/model/n_layers: is also the grid axis /grid/model.n_layers; a run crossed with the "
     "grid may not set a grid field"},
    {"RunsTimesGridTooLarge",
     R"({"name": "x", "runs": [{"name": "a"}, {"name": "b"}],
         "grid": {"training.steps": [100,101,102,103,104,105,106,107,108,109],
                  "training.seed": [1,2,3,4,5,6,7,8,9,10], "training.lr": [1,2,3,4,5,6,7,8,9,10],
                  "training.eval_every": [1,2,3,4,5,6]}})",
     "/grid: 2 runs × 6000 grid points is more than 10000 runs; split it into several jobs"},
    {"EmptyRuns", R"({"name": "x", "runs": []})",
     "/runs: must be a non-empty array of run objects, got array []"},
    {"RunNotObject", R"({"name": "x", "runs": ["a"]})",
     "/runs/0: must be an object, got string \"a\""},
    {"RunWithoutName", R"({"name": "x", "runs": [{"name": "a"}, {"model": {}}]})",
     "/runs/1: missing required key \"name\" (every run in \"runs\" needs a unique name)"},
    {"DuplicateRunName", R"({"name": "x", "runs": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})",
     "/runs/2/name: duplicate run name \"a\" (first used at /runs/0/name)"},
    {"NameInDefaults", R"({"name": "x", "defaults": {"name": "a"}})",
     "/defaults/name: unknown key (allowed: model, training, data, parallel, topology, metrics, "
     "checkpoint, inference, finetune)"},
    {"GridNotObject", R"({"name": "x", "grid": []})",
     "/grid: must be a non-empty object mapping run fields to arrays of values, got array []"},
    {"GridKeyNotDotted", R"({"name": "x", "grid": {"model": [1]}})",
     "/grid/model: must name a run field as SECTION.KEY, such as \"model.n_layers\""},
    {"GridUnknownSection", R"({"name": "x", "grid": {"modle.n_layers": [1]}})",
     "/grid/modle.n_layers: unknown section; did you mean \"model\"? (allowed: model, training, "
     "data, parallel, topology, metrics, checkpoint, inference, finetune)"},
    {"GridUnknownField", R"({"name": "x", "grid": {"parallel.pd": [1]}})",
     "/grid/parallel.pd: unknown field; did you mean \"parallel.dp\"? (allowed: parallel.dp, "
     "parallel.tp, parallel.bucket_mib, parallel.overlap, parallel.zero1, "
     "parallel.sequence_parallel, parallel.ep, parallel.watchdog_s)"},
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
    {"CheckpointEveryNegative", R"({"name": "x", "defaults": {"checkpoint": {"every": -5}}})",
     "/defaults/checkpoint/every: must be >= 0, got -5"},
    {"CheckpointDirNotString", R"({"name": "x", "defaults": {"checkpoint": {"dir": 3}}})",
     "/defaults/checkpoint/dir: must be a string, got number 3"},
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
     R"({"name": "x", "runs": [{"name": "a", "training": {"steps": -1}}],
         "defaults": {"training": {"batch_size": 0}}})",
     "/runs/0/training/steps: must be >= 0, got -1"},
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

// ---- --grid ----

std::vector<std::string> run_names(const Job& job) {
  std::vector<std::string> names;
  for (const RunConfig& run : job.runs) names.push_back(run.name);
  return names;
}

TEST(GridOverride, AddsAnAxisAfterTheJobsOwnOrReplacesIt) {
  const Job added = parse_job(R"({"name": "x", "runs": [{"name": "a"}, {"name": "b"}]})", kJobFile,
                              {parse_grid_override("training.seed=1,2,3")});
  EXPECT_EQ(run_names(added), (std::vector<std::string>{"a,seed=1", "a,seed=2", "a,seed=3", "b,seed=1", "b,seed=2", "b,seed=3"}));
  EXPECT_EQ(added.runs[4].training.seed, 2u);
  const Job replaced = parse_job(R"({"name": "x", "grid": {"model.mlp": ["dense", "moe"], "training.seed": [1, 2, 3]}})",
                                 kJobFile, {parse_grid_override("training.seed=[7, 8]")});
  EXPECT_EQ(run_names(replaced), (std::vector<std::string>{"mlp=dense,seed=7", "mlp=dense,seed=8", "mlp=moe,seed=7", "mlp=moe,seed=8"}));
  const Job strings = parse_job(R"({"name": "x"})", kJobFile, {parse_grid_override("model.norm=layernorm,rmsnorm")});
  EXPECT_EQ(run_names(strings), (std::vector<std::string>{"norm=layernorm", "norm=rmsnorm"}));
}

TEST(GridOverride, BadAxesAreRefusedWithTheirOrigin) {
  const std::string expected = "--grid: not PATH=VALUES; expected PATH=V1,V2,... such as training.seed=1,2,3, got ";
  EXPECT_EQ(error_of([] { parse_grid_override("training.seed"); }), expected + "\"training.seed\"");
  EXPECT_EQ(error_of([] { parse_grid_override("training.seed=[1, 2"); }),
            "--grid: the values are not a JSON array; expected PATH=V1,V2,... such as training.seed=1,2,3, got "
            "\"training.seed=[1, 2\"");
  EXPECT_EQ(error_of([] { parse_job(R"({"name": "x"})", kJobFile, {parse_grid_override("model.n_layers=2,0")}); }),
            "jobs/x.json: /grid/model.n_layers/1: must be in [1, 1024], got 0 (from --grid)");
  EXPECT_EQ(error_of([] { parse_job(R"({"name": "x"})", kJobFile, {parse_grid_override("training.seed=1,1")}); }),
            "jobs/x.json: /grid/training.seed/1: repeats 1; grid values must differ (they name the runs) (from --grid)");
  EXPECT_EQ(error_of([] {
              parse_job(R"({"name": "x", "runs": [{"name": "a", "training": {"seed": 4}}]})", kJobFile,
                        {parse_grid_override("training.seed=1,2")});
            }),
            "jobs/x.json: /runs/0/training/seed: is also the grid axis /grid/training.seed; a run crossed with the grid "
            "may not set a grid field");
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

TEST(Overrides, ReplaceAGridAxisCrossedWithRuns) {
  const Job job = parse_job(R"({"name": "x", "runs": [{"name": "a"}, {"name": "b"}],
                                "grid": {"training.seed": [1, 2, 3]}})",
                            kJobFile, {parse_override("training.seed=7")});
  ASSERT_EQ(job.runs.size(), 2u);
  EXPECT_EQ(job.runs[0].name, "a,seed=7");
  EXPECT_EQ(job.runs[1].name, "b,seed=7");
  EXPECT_EQ(job.runs[1].training.seed, 7u);
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
              "nsa_select_n": 16, "nsa_window": 512, "wiring": "sequential", "rotary_pct": 1.0,
              "mlp": "dense", "moe_experts": 8, "moe_top_k": 2, "moe_shared_experts": 0,
              "moe_d_ff": 0, "moe_renormalize": false, "moe_aux_coeff": 0.01, "moe_z_coeff": 0.0,
              "moe_capacity_factor": 0.0, "token_mixer": "attention", "mamba_d_state": 16,
              "mamba_expand": 2, "mamba_d_conv": 4, "mamba_dt_rank": 0, "mamba_chunk": 64,
              "rwkv_head_size": 64, "rwkv_chunk": 32, "rwkv_mix_lora": 32, "rwkv_decay_lora": 64,
              "bias": "all", "tie_embeddings": true, "from_hf": "", "init_from": ""},
    "training": {"steps": 200, "batch_size": 8, "lr": 0.001, "min_lr": 0.0001, "warmup_steps": 20,
                 "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "adam_eps": 1e-8,
                 "grad_clip": 1.0, "seed": 1234, "eval_every": 50, "eval_batches": 8,
                 "log_every": 10, "warmup_iters": 3, "export_hf": ""},
    "data": {"corpus": ["/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
                        "/usr/share/games/fortunes/wisdom", "/usr/share/games/fortunes/people",
                        "/usr/share/games/fortunes/humorists", "/usr/share/games/fortunes/science"],
             "val_fraction": 0.05, "format": "text", "tokenizer": "bytes"},
    "parallel": {"dp": 1, "tp": 1, "bucket_mib": 1.0, "overlap": true, "zero1": false,
                 "sequence_parallel": false, "ep": 1, "watchdog_s": 600.0},
    "topology": {"policy": "inherit"},
    "metrics": {"sample_period_ms": 100, "p_idle_w": 0.0, "p_max_w": 0.0},
    "checkpoint": {"save": false, "every": 0, "optimizer": true, "dir": ""},
    "inference": {"formats": "fp32", "prompt_tokens": 512, "gen_tokens": 128, "repetitions": 5,
                  "warmup": 1, "batch": 1, "quality_windows": 4},
    "finetune": {"method": "full", "rank": 8, "alpha": 16.0, "dropout": 0.0,
                 "target_modules": ["q", "v"], "freeze_last_k": 2, "freeze_modules": ["all"], "lora_plus_ratio": 16.0,
                 "pissa_svd_iters": 0, "adapter_from": "", "save_adapter": ""}})"));
}

// Attention's rules (ALiBi needs GQA, RoPE needs an even head size) bind attention layers only.
TEST(GoodJob, MambaLayersAmongAttentionLayersIgnoreAttentionRules) {
  const Job job = parse_job(R"({"name": "h", "defaults": {"model": {"n_layers": 3, "d_model": 18,
      "n_heads": 6, "positions": "rope", "token_mixer": "mamba", "mamba_d_state": 8,
      "layer_overrides": {"1": {"token_mixer": "attention", "attention": "mla", "mla_rope_dim": 2}}}}})",
                            kJobFile);
  const ModelConfig& m = job.runs[0].model;
  ASSERT_EQ(m.layers.size(), 3u);
  EXPECT_EQ(m.layers[0].token_mixer, TokenMixerKind::Mamba);
  EXPECT_EQ(m.layers[1].token_mixer, TokenMixerKind::Attention);
  EXPECT_EQ(m.layers[2].mamba_d_state, 8);
  EXPECT_EQ(m.layers[0].mamba_rank(), 2);  // ⌈18/16⌉
  EXPECT_EQ(job.runs[0].as_json["model"]["token_mixer"], "mamba");
  // The same stack with attention everywhere breaks RoPE's even head size (18 / 6 = 3).
  EXPECT_THROW(parse_job(R"({"name": "h", "defaults": {"model": {"d_model": 18, "n_heads": 6,
      "positions": "rope"}}})", kJobFile), JobError);
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

TEST(GoodJob, RunsCrossedWithTheGridInOrderWritten) {
  const Job job = parse_job(R"({"name": "x", "defaults": {"model": {"n_layers": 1}},
      "runs": [{"name": "deep", "model": {"n_layers": 4}}, {"name": "wide", "model": {"d_model": 192}}],
      "grid": {"training.seed": [1, 2]}})",
                            kJobFile);
  std::vector<std::string> names;
  for (const RunConfig& run : job.runs) names.push_back(run.name);
  EXPECT_EQ(names, (std::vector<std::string>{"deep,seed=1", "deep,seed=2", "wide,seed=1",
                                             "wide,seed=2"}));
  EXPECT_EQ(job.runs[1].model.n_layers, 4);
  EXPECT_EQ(job.runs[1].training.seed, 2u);
  EXPECT_EQ(job.runs[2].model.n_layers, 1);
  EXPECT_EQ(job.runs[2].model.d_model, 192);
  EXPECT_EQ(job.runs[2].training.seed, 1u);
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

// ---- per-layer description ----

TEST(Layers, NoneGivenLeavesLayersEmpty) {
  const Job job = parse_job(R"({"name": "x"})", kJobFile);
  EXPECT_TRUE(job.runs[0].model.layers.empty());
  EXPECT_FALSE(job.runs[0].as_json["model"].contains("layer_pattern"));
  EXPECT_FALSE(job.runs[0].as_json["model"].contains("layer_overrides"));
}

TEST(Layers, PatternCyclesAndOverridesApplyAfterIt) {
  const Job job = parse_job(R"({"name": "x", "defaults": {"model": {
      "n_layers": 7, "positions": "rope", "d_ff": 1024,
      "layer_pattern": [{}, {}, {"attention": "mla", "mla_kv_latent": 64}],
      "layer_overrides": {"0": {"window": 32}, "5": {"attention": "gqa", "n_kv_heads": 2},
                          "6": {"d_ff": 512, "activation": "swiglu"}}}}})",
                            kJobFile);
  const ModelConfig& m = job.runs[0].model;
  // The model-level fields stay as written.
  EXPECT_EQ(m.attention, AttentionKind::GQA);
  EXPECT_EQ(m.window, 0);
  ASSERT_EQ(m.layers.size(), 7u);
  const std::vector<AttentionKind> attention = {AttentionKind::GQA, AttentionKind::GQA,
                                                AttentionKind::MLA, AttentionKind::GQA,
                                                AttentionKind::GQA, AttentionKind::GQA,
                                                AttentionKind::GQA};
  const std::vector<int> window = {32, 0, 0, 0, 0, 0, 0};
  const std::vector<int> kv_heads = {0, 0, 0, 0, 0, 2, 0};
  const std::vector<int> kv_latent = {128, 128, 64, 128, 128, 64, 128};
  const std::vector<int> d_ff = {1024, 1024, 1024, 1024, 1024, 1024, 512};
  for (int l = 0; l < 7; ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const ModelConfig& layer = m.layer(l);
    EXPECT_EQ(&layer, &m.layers[l]);
    EXPECT_EQ(layer.attention, attention[l]);
    EXPECT_EQ(layer.window, window[l]);
    EXPECT_EQ(layer.n_kv_heads, kv_heads[l]);
    EXPECT_EQ(layer.mla_kv_latent, kv_latent[l]);  // layer 5 keeps its pattern entry's latent
    EXPECT_EQ(layer.d_ff, d_ff[l]);
    EXPECT_EQ(layer.activation, l == 6 ? Activation::SwiGLU : Activation::GELU);
    // Model-wide fields are the model's, and a layer describes no layers of its own.
    EXPECT_EQ(layer.n_layers, 7);
    EXPECT_EQ(layer.d_model, 384);
    EXPECT_EQ(layer.positions, Positions::RoPE);
    EXPECT_TRUE(layer.layers.empty());
  }
}

TEST(Layers, OverridesAloneResolveEveryLayer) {
  const Job job = parse_job(
      R"({"name": "x", "defaults": {"model": {"n_layers": 3, "layer_overrides": {"1": {"window": 16}}}}})",
      kJobFile);
  const ModelConfig& m = job.runs[0].model;
  ASSERT_EQ(m.layers.size(), 3u);
  EXPECT_EQ(m.layer(0).window, 0);
  EXPECT_EQ(m.layer(1).window, 16);
  EXPECT_EQ(m.layer(2).window, 0);
}

TEST(Layers, ARunsPatternReplacesTheDefaultsPattern) {
  const Job job = parse_job(R"({"name": "x",
      "defaults": {"model": {"n_layers": 4, "layer_pattern": [{"window": 8}, {"window": 16}]}},
      "runs": [{"name": "a"}, {"name": "b", "model": {"layer_pattern": [{}, {}, {"window": 4}]}},
               {"name": "c", "model": {"n_layers": 2}}]})",
                            kJobFile);
  const auto windows = [](const ModelConfig& m) {
    std::vector<int> out;
    for (int l = 0; l < m.n_layers; ++l) out.push_back(m.layer(l).window);
    return out;
  };
  EXPECT_EQ(windows(job.runs[0].model), (std::vector<int>{8, 16, 8, 16}));
  EXPECT_EQ(windows(job.runs[1].model), (std::vector<int>{0, 0, 4, 0}));
  EXPECT_EQ(windows(job.runs[2].model), (std::vector<int>{8, 16}));
}

// docs/JOBS.md's hybrid: 6 layers, every third one MLA, layer 0 with a sliding window.
TEST(Layers, HybridValidatesAndItsDescriptionIsReportedAsGiven) {
  const Job job = parse_job(R"({"name": "hybrid", "defaults": {
      "model": {"n_layers": 6, "positions": "rope", "norm": "rmsnorm", "activation": "swiglu",
                "layer_pattern": [{}, {}, {"attention": "mla", "d_ff": 1024}],
                "layer_overrides": {"0": {"window": 128}}},
      "parallel": {"tp": 2}}})",
                            kJobFile);
  const RunConfig& run = job.runs[0];
  ASSERT_EQ(run.model.layers.size(), 6u);
  EXPECT_EQ(run.model.layer(0).window, 128);
  EXPECT_EQ(run.model.layer(2).attention, AttentionKind::MLA);
  EXPECT_EQ(run.model.layer(5).attention, AttentionKind::MLA);
  EXPECT_EQ(run.model.layer(5).d_ff, 1024);
  EXPECT_EQ(run.as_json["model"]["layer_pattern"],
            nlohmann::json::parse(R"([{}, {}, {"attention": "mla", "d_ff": 1024}])"));
  EXPECT_EQ(run.as_json["model"]["layer_overrides"],
            nlohmann::json::parse(R"({"0": {"window": 128}})"));
  // The model-level fields are reported as they are, not per layer.
  EXPECT_EQ(run.as_json["model"]["attention"], "gqa");
  EXPECT_EQ(run.as_json["model"]["window"], 0);
}

TEST(Layers, PythiaStyleValidates) {
  const Job job = parse_job(R"({"name": "x", "defaults": {"model": {
      "wiring": "parallel", "positions": "rope", "rotary_pct": 0.25, "norm": "layernorm",
      "activation": "gelu", "d_model": 512, "n_heads": 8, "d_ff": 2048}}})",
                            kJobFile);
  const ModelConfig& m = job.runs[0].model;
  EXPECT_EQ(m.wiring, Wiring::Parallel);
  EXPECT_EQ(m.rotary_pct, 0.25);
  EXPECT_EQ(m.rotary_dim(), 16);
  EXPECT_TRUE(m.layers.empty());
  EXPECT_EQ(job.runs[0].as_json["model"]["wiring"], "parallel");
  EXPECT_EQ(job.runs[0].as_json["model"]["rotary_pct"], 0.25);
}

TEST(Layers, TensorParallelMlaAndNsaValidateWhenDivisible) {
  for (const std::string model :
       {R"({"attention": "mla", "positions": "rope"})",
        R"({"attention": "mla", "positions": "rope", "n_heads": 8, "mla_q_latent": 96})",
        R"({"attention": "nsa", "n_heads": 8, "n_kv_heads": 4})",
        R"({"attention": "nsa", "n_heads": 8})",
        R"({"n_heads": 8, "n_kv_heads": 1, "positions": "rope",
            "layer_pattern": [{}, {"attention": "nsa", "n_kv_heads": 2}, {"attention": "mla", "n_kv_heads": 0}]})"}) {
    SCOPED_TRACE(model);
    const Job job = parse_job(R"({"name": "x", "defaults": {"model": )" + model +
                                  R"(, "parallel": {"tp": 2, "sequence_parallel": true}}})",
                              kJobFile);
    EXPECT_EQ(job.runs[0].parallel.tp, 2);
  }
}

TEST(Layers, GridOverThePattern) {
  const Job job = parse_job(R"({"name": "x", "defaults": {"model": {"positions": "rope"}},
      "grid": {"model.layer_pattern": [[{}], [{}, {"attention": "mla"}]]}})",
                            kJobFile);
  ASSERT_EQ(job.runs.size(), 2u);
  EXPECT_EQ(job.runs[1].name, R"(layer_pattern=[{},{"attention":"mla"}])");
  EXPECT_EQ(job.runs[0].model.layer(3).attention, AttentionKind::GQA);
  EXPECT_EQ(job.runs[1].model.layer(3).attention, AttentionKind::MLA);
}

TEST(Layers, SetOverridesTheNewFields) {
  const Job job = parse_job(
      R"({"name": "x", "defaults": {"model": {"positions": "rope"}}, "runs": [{"name": "a"}]})",
      kJobFile,
      {parse_override("model.wiring=parallel"), parse_override("model.rotary_pct=0.5"),
       parse_override(R"(model.layer_overrides={"2": {"attention": "mla"}})")});
  const ModelConfig& m = job.runs[0].model;
  EXPECT_EQ(m.wiring, Wiring::Parallel);
  EXPECT_EQ(m.rotary_pct, 0.5);
  EXPECT_EQ(m.layer(2).attention, AttentionKind::MLA);
  EXPECT_EQ(m.layer(2).wiring, Wiring::Parallel);
  EXPECT_EQ(job.runs[0].as_json["model"]["wiring"], "parallel");
}

TEST(Layers, BadValueFromSetNamesWhereItLanded) {
  EXPECT_EQ(parse_error(R"({"name": "x"})", {R"(model.layer_pattern=[{"seq_len": 64}])"}),
            "jobs/x.json: /defaults/model/layer_pattern/0/seq_len: model-wide key; it is the same "
            "in every layer, so set it in \"model\" itself (allowed per layer: " +
                kBlockKeys + ") (from --set)");
  EXPECT_EQ(parse_error(R"({"name": "x"})", {"model.wiring=crossed"}),
            "jobs/x.json: /defaults/model/wiring: must be one of \"sequential\", \"parallel\"; "
            "got \"crossed\" (from --set)");
}

// A --set replaces one field whole: into layer_overrides it would merge with the defaults' but
// replace the runs' (dropping what they inherit), so deeper paths are refused.
TEST(ParseOverride, RefusesPathsBelowAField) {
  EXPECT_EQ(error_of([] { parse_override("model.layer_overrides.3.window=64"); }),
            "--set: PATH must name one run field as SECTION.KEY; set an object or array field "
            "whole, such as model.layer_overrides={\"3\": {\"window\": 64}}; got "
            "\"model.layer_overrides.3.window=64\"");
}

}  // namespace
}  // namespace ellm
