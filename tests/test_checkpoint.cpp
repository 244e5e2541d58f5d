// check_resume: a checkpoint that does not fit the run is refused before any work, with one
// message naming the file, the tensor or metadata key, and what the job expected. (Saving and
// resuming themselves run under MPI: tests/e2e/checkpoint_resume.sh.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <cmath>
#include <algorithm>

#include "model/plan.hpp"
#include "train/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace ellm;

namespace {

const char* kJob = R"({"name": "j", "defaults": {
    "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32, "seq_len": 8},
    "training": {"steps": 10, "warmup_steps": 2, "warmup_iters": 2}}})";

// A checkpoint as save_checkpoint writes it, for the run, at `step`; `edit` changes the tensor
// list and the metadata first.
struct Fixture {
  RunConfig run = parse_job(kJob, "job.json").runs[0];
  fs::path file = fs::temp_directory_path() / ("ellm_ckpt_" + std::to_string(::getpid()) + ".safetensors");
  std::vector<std::vector<float>> storage;

  std::string write(int step, const std::function<void(std::vector<st::TensorOut>&,
                                                       std::map<std::string, std::string>&)>& edit = {}) {
    const ArenaLayout layout = make_param_layout(run.model);
    std::vector<st::TensorOut> out;
    storage.clear();
    storage.reserve(3 * layout.tensors().size());
    auto add = [&](const std::string& name, const TensorInfo& t) {
      storage.emplace_back(t.full_numel, 0.25f);
      out.push_back({name, st::DType::F32, {t.full_shape.begin(), t.full_shape.end()}, storage.back().data()});
    };
    for (const TensorInfo& t : layout.tensors()) add(t.name, t);
    for (const TensorInfo& t : layout.tensors()) {
      add("adamw.m." + t.name, t);
      add("adamw.v." + t.name, t);
    }
    std::map<std::string, std::string> meta = {
        {"format", kCheckpointFormat}, {"format_version", "1"}, {"step", std::to_string(step)},
        {"config", run.as_json.dump()}, {"layout", R"({"dp": 2, "tp": 1, "ep": 1, "zero1": false})"},
        {"optimizer", "adamw"}, {"adamw_steps", std::to_string(step)}};
    if (edit) edit(out, meta);
    st::write(file, out, meta);
    return file.string();
  }
  // check_resume's message for the file as written ("" when it is accepted).
  std::string error() const {
    try {
      check_resume(st::Reader::open(file), run);
    } catch (const st::FileError& e) {
      return e.what();
    }
    return "";
  }
  ~Fixture() { fs::remove(file); }
};

void drop(std::vector<st::TensorOut>& out, const std::string& name) {
  std::erase_if(out, [&](const st::TensorOut& t) { return t.name == name; });
}

}  // namespace

TEST(CheckResume, AcceptsTheRunsOwnCheckpoint) {
  Fixture f;
  f.write(4);
  const ResumePoint p = check_resume(st::Reader::open(f.file), f.run);
  EXPECT_EQ(p.step, 4);
  EXPECT_TRUE(p.notes.empty());
  f.run.training.lr = 0.5;  // a changed training setting is accepted, with a note
  f.run.as_json["training"]["lr"] = 0.5;
  EXPECT_EQ(check_resume(st::Reader::open(f.file), f.run).notes,
            std::vector<std::string>{"/training/lr: 0.001 in the checkpoint, 0.5 in the job"});
}

TEST(CheckResume, MissingTensor) {
  Fixture f;
  f.write(4, [](auto& out, auto&) { drop(out, "h.0.mlp.fc.w"); });
  EXPECT_EQ(f.error(), f.file.string() + ": tensor 'h.0.mlp.fc.w': missing; the job's model has it with shape [32, 16]");
}

TEST(CheckResume, ShapeThatDoesNotMatchTheConfig) {
  Fixture f;
  std::vector<float> wrong(16 * 3, 1.0f);
  f.write(4, [&](auto& out, auto&) {
    for (st::TensorOut& t : out)
      if (t.name == "lnf.w") t = {t.name, st::DType::F32, {48}, wrong.data()};
  });
  EXPECT_EQ(f.error(), f.file.string() + ": tensor 'lnf.w': shape [48] does not match the job's model, which has [16]");
}

TEST(CheckResume, DtypeThatIsNotF32) {
  Fixture f;
  std::vector<std::uint16_t> half(16, st::to_bf16(1.0f));
  f.write(4, [&](auto& out, auto&) {
    for (st::TensorOut& t : out)
      if (t.name == "lnf.w") t = {t.name, st::DType::BF16, {16}, half.data()};
  });
  EXPECT_EQ(f.error(), f.file.string() + ": tensor 'lnf.w': dtype BF16: resuming needs F32, the run's exact values");
}

TEST(CheckResume, MissingMomentsAndForeignTensors) {
  Fixture f;
  f.write(4, [](auto& out, auto&) { drop(out, "adamw.v.lnf.b"); });
  EXPECT_EQ(f.error(), f.file.string() + ": tensor 'adamw.v.lnf.b': missing; the job's model has it with shape [16]");
  std::vector<float> extra(4, 1.0f);
  f.write(4, [&](auto& out, auto&) { out.push_back({"h.7.attn.extra", st::DType::F32, {4}, extra.data()}); });
  EXPECT_EQ(f.error(), f.file.string() + ": tensor 'h.7.attn.extra': is not a tensor of the job's model");
}

TEST(CheckResume, MetadataThatDoesNotFit) {
  Fixture f;
  f.write(4, [](auto&, auto& meta) { meta.erase("format"); });
  EXPECT_EQ(f.error(), f.file.string() +
                           ": not an efficientllm checkpoint (its __metadata__ has no \"format\": \"efficientllm-checkpoint\")");
  f.write(4, [](auto&, auto& meta) { meta["format_version"] = "2"; });
  EXPECT_EQ(f.error(), f.file.string() + ": format version 2; this build reads version 1");
  f.write(4, [](auto&, auto& meta) { meta["step"] = "four"; });
  EXPECT_EQ(f.error(), f.file.string() + ": __metadata__ \"step\" must be a non-negative integer, got 'four'");
  f.write(10);
  EXPECT_EQ(f.error(), f.file.string() + ": is at step 10 and the run has training.steps = 10: nothing left to train");
  f.write(8);
  EXPECT_EQ(f.error(), f.file.string() + ": is at step 8, which leaves 2 of training.steps = 10; more than "
                                         "training.warmup_iters = 2 are needed to measure one");
  f.write(4, [](auto&, auto& meta) { meta["optimizer"] = "none"; });
  EXPECT_EQ(f.error(), f.file.string() + ": holds no optimizer state (saved with checkpoint.optimizer = false): "
                                         "resuming needs the AdamW moments");
}

TEST(CheckResume, AnotherModel) {
  Fixture f;
  f.write(4);
  f.run = parse_job(kJob, "job.json", {{"model.d_ff", "64"}}).runs[0];
  EXPECT_EQ(f.error(), f.file.string() + ": was saved by a run with another model: /model/d_ff: 32 in the checkpoint, 64 in the job");
}

TEST(CheckpointFiles, NamesAndTheLatestInADirectory) {
  Fixture f;
  const fs::path dir = fs::temp_directory_path() / ("ellm_ckdir_" + std::to_string(::getpid()));
  EXPECT_EQ(checkpoint_file(dir, f.run, 40), dir / "j" / "step-000040.safetensors");
  fs::create_directories(dir / "j");
  for (const char* name : {"step-000008.safetensors", "step-000012.safetensors", "notes.txt"})
    std::ofstream(dir / "j" / name) << "x";
  EXPECT_EQ(resolve_checkpoint(dir / "j"), dir / "j" / "step-000012.safetensors");
  EXPECT_EQ(resolve_checkpoint(dir / "j" / "step-000008.safetensors"), dir / "j" / "step-000008.safetensors");
  try {
    resolve_checkpoint(dir);
    ADD_FAILURE() << "no error";
  } catch (const st::FileError& e) {
    EXPECT_EQ(std::string(e.what()), dir.string() + ": no checkpoint (step-*.safetensors) in this directory");
  }
  fs::remove_all(dir);
}

// model.init_from: the weights alone — moments optional and ignored, the step and the training
// settings free — but the same tensors, shapes and F32.
std::string init_error(const Fixture& f) {
  try {
    check_init_from(st::Reader::open(f.file), f.run);
  } catch (const st::FileError& e) {
    return e.what();
  }
  return "";
}

TEST(InitFrom, LoadsEveryParameterExactlyAndNeedsNoMoments) {
  Fixture f;
  f.write(10, [&](auto& out, auto& meta) {
    std::erase_if(out, [](const st::TensorOut& t) { return t.name.starts_with("adamw."); });
    meta["optimizer"] = "none";
    float x = 0.001f;  // a distinct value per element
    for (std::vector<float>& v : f.storage)
      for (float& e : v) e = (x += 0.37f) - std::floor(x);
  });
  f.run.training.steps = 3;  // would be "nothing left to train" for a resume
  EXPECT_EQ(init_error(f), "");
  GPT<float> model(f.run.model, 1);
  model.init_params(1);
  load_weights(st::Reader::open(f.file), model);
  const st::Reader ckpt = st::Reader::open(f.file);
  for (const TensorInfo& t : model.param_layout().tensors()) {
    std::vector<float> expected(t.full_numel);
    st::read_as(ckpt.at(t.name), expected.data());
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), model.params() + t.offset)) << t.name;
  }
}

TEST(InitFrom, RefusesAnotherModelsTensors) {
  Fixture f;
  f.write(4, [](auto& out, auto&) { drop(out, "h.0.mlp.fc.w"); });
  EXPECT_EQ(init_error(f), f.file.string() + ": tensor 'h.0.mlp.fc.w': missing; the job's model has it with shape [32, 16]");
  std::vector<float> extra(4, 1.0f);
  f.write(4, [&](auto& out, auto&) { out.push_back({"h.7.attn.extra", st::DType::F32, {4}, extra.data()}); });
  EXPECT_EQ(init_error(f), f.file.string() + ": tensor 'h.7.attn.extra': is not a tensor of the job's model");
  f.write(4, [](auto&, auto& meta) { meta.erase("format"); });
  EXPECT_EQ(init_error(f), f.file.string() +
                               ": not an efficientllm checkpoint (its __metadata__ has no \"format\": "
                               "\"efficientllm-checkpoint\")");
}
