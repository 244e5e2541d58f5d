#include "train/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace ellm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kMomentM = "adamw.m.", kMomentV = "adamw.v.";

std::vector<std::int64_t> shape_of(const std::vector<int>& full_shape) {
  return {full_shape.begin(), full_shape.end()};
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  s += "]";
  return s;
}

// f(full, local, n) for the runs of tensor t's shard that fall in its local elements [lb, le):
// an optimizer piece may cover part of a tensor (ZeRO-1 splits the arena anywhere).
template <class F>
void for_each_run_in(const TensorInfo& t, std::size_t lb, std::size_t le, F&& f) {
  for_each_shard_run(t, [&](std::size_t full, std::size_t local, std::size_t n) {
    const std::size_t b = std::max(local, lb), e = std::min(local + n, le);
    if (b < e) f(full + (b - local), b, e - b);
  });
}

// Where each tensor of the layout starts in a buffer of whole tensors back to back.
std::vector<std::size_t> full_offsets(const ArenaLayout& layout, std::size_t& total) {
  std::vector<std::size_t> offsets;
  total = 0;
  for (const TensorInfo& t : layout.tensors()) {
    offsets.push_back(total);
    total += t.full_numel;
  }
  return offsets;
}

// The metadata key `key`, or a FileError saying it is missing.
const std::string& meta(const st::Reader& ckpt, const std::string& key) {
  const auto it = ckpt.metadata().find(key);
  if (it == ckpt.metadata().end())
    throw st::FileError(ckpt.path().string(), "",
                        "__metadata__ has no \"" + key + "\" (written by an older or foreign program?)");
  return it->second;
}

int meta_int(const st::Reader& ckpt, const std::string& key) {
  const std::string& text = meta(ckpt, key);
  std::size_t used = 0;
  int value = -1;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
  }
  if (used != text.size() || value < 0)
    throw st::FileError(ckpt.path().string(), "",
                        "__metadata__ \"" + key + "\" must be a non-negative integer, got '" + text + "'");
  return value;
}

// A tensor the run needs: present, F32, its full shape.
void expect_tensor(const st::Reader& ckpt, const std::string& name, const std::vector<int>& full_shape) {
  const std::string file = ckpt.path().string();
  const std::vector<std::int64_t> shape = shape_of(full_shape);
  const st::TensorView* t = ckpt.find(name);
  if (!t) throw st::FileError(file, name, "missing; the job's model has it with shape " + shape_text(shape));
  if (t->shape != shape)
    throw st::FileError(t->file.string(), name,
                        "shape " + shape_text(t->shape) + " does not match the job's model, which has " +
                            shape_text(shape));
  if (t->dtype != st::DType::F32)
    throw st::FileError(t->file.string(), name,
                        std::string("dtype ") + st::dtype_name(t->dtype) +
                            ": resuming needs F32, the run's exact values");
}

// "/model/d_model: 64 in the checkpoint, 128 in the job" for the first difference of a section.
std::string first_difference(const json& saved, const json& now, const std::string& section) {
  const json patch = json::diff(saved.value(section, json::object()), now.value(section, json::object()));
  if (patch.empty()) return "";
  const std::string path = patch[0]["path"].get<std::string>();
  const json::json_pointer at(path);
  const json& before = saved[section];
  const json& after = now[section];
  return "/" + section + path + ": " + (before.contains(at) ? before[at].dump() : "absent") +
         " in the checkpoint, " + (after.contains(at) ? after[at].dump() : "absent") + " in the job";
}

void expect_checkpoint_format(const st::Reader& ckpt) {
  const std::string file = ckpt.path().string();
  const auto format = ckpt.metadata().find("format");
  if (format == ckpt.metadata().end() || format->second != kCheckpointFormat)
    throw st::FileError(file, "", std::string("not an efficientllm checkpoint (its __metadata__ has no "
                                              "\"format\": \"") + kCheckpointFormat + "\")");
  if (meta_int(ckpt, "format_version") != kCheckpointVersion)
    throw st::FileError(file, "", "format version " + meta(ckpt, "format_version") +
                                      "; this build reads version " + std::to_string(kCheckpointVersion));
}

bool is_moment(const std::string& name) { return name.starts_with(kMomentM) || name.starts_with(kMomentV); }

// Every tensor in the file is one of the model's, or a moment of one.
void expect_no_foreign_tensors(const st::Reader& ckpt, const ArenaLayout& layout) {
  const auto& ts = layout.tensors();
  for (const std::string& name : ckpt.names()) {
    const std::string base = is_moment(name) ? name.substr(kMomentM.size()) : name;
    if (std::none_of(ts.begin(), ts.end(), [&](const TensorInfo& t) { return t.name == base; }))
      throw st::FileError(ckpt.at(name).file.string(), name, "is not a tensor of the job's model");
  }
}

}  // namespace

void check_init_from(const st::Reader& ckpt, const RunConfig& run) {
  expect_checkpoint_format(ckpt);
  const ArenaLayout layout = make_param_layout(run.model);
  for (const TensorInfo& t : layout.tensors()) {
    if (t.adapter && !ckpt.find(t.name)) continue;  // a base model: the adapters start as declared
    expect_tensor(ckpt, t.name, t.full_shape);
  }
  expect_no_foreign_tensors(ckpt, layout);
}

ResumePoint check_resume(const st::Reader& ckpt, const RunConfig& run) {
  const std::string file = ckpt.path().string();
  expect_checkpoint_format(ckpt);
  json saved;
  try {
    saved = json::parse(meta(ckpt, "config"));
  } catch (const json::parse_error&) {
    throw st::FileError(file, "", "__metadata__ \"config\" is not valid JSON");
  }
  if (const std::string diff = first_difference(saved, run.as_json, "model"); !diff.empty())
    throw st::FileError(file, "", "was saved by a run with another model: " + diff);
  ResumePoint point;
  point.step = meta_int(ckpt, "step");
  if (point.step >= run.training.steps)
    throw st::FileError(file, "", "is at step " + std::to_string(point.step) + " and the run has training.steps = " +
                                      std::to_string(run.training.steps) + ": nothing left to train");
  const int remaining = run.training.steps - point.step;
  if (remaining <= run.training.warmup_iters)
    throw st::FileError(file, "", "is at step " + std::to_string(point.step) + ", which leaves " +
                                      std::to_string(remaining) + " of training.steps = " +
                                      std::to_string(run.training.steps) + "; more than training.warmup_iters = " +
                                      std::to_string(run.training.warmup_iters) + " are needed to measure one");
  meta_int(ckpt, "adamw_steps");
  if (!json::accept(meta(ckpt, "layout")))  // shown in the resumed run's report
    throw st::FileError(file, "", "__metadata__ \"layout\" is not valid JSON");
  if (meta(ckpt, "optimizer") != "adamw")
    throw st::FileError(file, "",
                        "holds no optimizer state (saved with checkpoint.optimizer = false): resuming needs "
                        "the AdamW moments");
  const ArenaLayout layout = make_param_layout(run.model);
  std::size_t expected = 0;
  for (const TensorInfo& t : layout.tensors()) {
    expect_tensor(ckpt, t.name, t.full_shape);
    expected++;
    if (!t.trainable) continue;
    expect_tensor(ckpt, kMomentM + t.name, t.full_shape);
    expect_tensor(ckpt, kMomentV + t.name, t.full_shape);
    expected += 2;
  }
  if (ckpt.names().size() != expected) expect_no_foreign_tensors(ckpt, layout);
  for (const char* section : {"training", "data"}) {
    if (const std::string diff = first_difference(saved, run.as_json, section); !diff.empty())
      point.notes.push_back(diff);
  }
  return point;
}

fs::path checkpoint_file(const fs::path& dir, const RunConfig& run, int step) {
  // The run's directory must be one component below dir: the job validator allows no '/' in
  // names and no "." or ".." names; this refuses what might slip past it rather than write
  // outside the output directory.
  if (run.name.empty() || run.name == "." || run.name == ".." || run.name.find('/') != std::string::npos) {
    throw std::invalid_argument("run name \"" + run.name + "\" cannot name a checkpoint directory");
  }
  char name[32];
  std::snprintf(name, sizeof name, "step-%06d.safetensors", step);
  return dir / run.name / name;
}

fs::path resolve_checkpoint(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  fs::path best;
  for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("step-") && name.ends_with(".safetensors") && (best.empty() || name > best.filename().string()))
      best = e.path();
  }
  if (best.empty())
    throw st::FileError(path.string(), "", "no checkpoint (step-*.safetensors) in this directory");
  return best;
}

void save_checkpoint(const fs::path& file, const RunConfig& run, int step, const GPT<float>& model,
                     AdamW& opt, const mpi::ProcessGrid& grid, mpi::Comm& world) {
  const ArenaLayout& layout = model.param_layout();
  std::size_t total = 0;
  const std::vector<std::size_t> at = full_offsets(layout, total);
  // Whole tensors back to back; each rank fills in what it holds and zeros stay elsewhere.
  std::vector<float> params(total, 0.0f);
  const bool with_moments = run.checkpoint.optimizer;
  std::vector<float> m(with_moments ? total : 0, 0.0f), v(m.size(), 0.0f);
  for (std::size_t k = 0; k < layout.tensors().size(); k++) {
    const TensorInfo& t = layout.tensors()[k];
    insert_shard(model.params() + t.offset, t, params.data() + at[k]);
  }
  if (with_moments) {
    opt.for_each_moment([&](const TensorInfo& t, std::size_t b, std::size_t e, const float* pm, const float* pv) {
      const std::size_t k = std::size_t(&t - layout.tensors().data());
      const std::size_t lb = b - t.offset;
      for_each_run_in(t, lb, e - t.offset, [&](std::size_t full, std::size_t local, std::size_t n) {
        std::copy_n(pm + (local - lb), n, m.data() + at[k] + full);
        std::copy_n(pv + (local - lb), n, v.data() + at[k] + full);
      });
    });
  }
  constexpr std::size_t kBucket = std::size_t(16) << 20;
  for (std::vector<float>* buffer : {&params, &m, &v}) {
    // MPI sees the floats' bytes only: the OR reassembles their bit patterns exactly.
    world.reduce_or_to_root(reinterpret_cast<std::uint32_t*>(buffer->data()), buffer->size(), kBucket);
  }
  std::string error;
  if (world.is_root()) {
    std::vector<st::TensorOut> out;
    for (std::size_t k = 0; k < layout.tensors().size(); k++) {
      const TensorInfo& t = layout.tensors()[k];
      out.push_back({t.name, st::DType::F32, shape_of(t.full_shape), params.data() + at[k]});
    }
    for (std::size_t k = 0; with_moments && k < layout.tensors().size(); k++) {
      const TensorInfo& t = layout.tensors()[k];
      if (!t.trainable) continue;
      out.push_back({kMomentM + t.name, st::DType::F32, shape_of(t.full_shape), m.data() + at[k]});
      out.push_back({kMomentV + t.name, st::DType::F32, shape_of(t.full_shape), v.data() + at[k]});
    }
    const json layout_json = {{"dp", grid.dp.size()}, {"tp", grid.tp.size()}, {"ep", grid.ep.size()},
                              {"zero1", run.parallel.zero1}};
    // Every draw during training is a function of (training.seed, stream, step): BatchSampler
    // seeds each step's batch from the step, and initialisation is done; no generator carries state.
    const json rng = {{"generator", "splitmix64"}, {"seed", run.training.seed},
                      {"state", "none carried: draws derive from training.seed and the step"}};
    try {
      fs::create_directories(file.parent_path());
      st::write(file, out,
                {{"format", kCheckpointFormat},
                 {"format_version", std::to_string(kCheckpointVersion)},
                 {"step", std::to_string(step)},
                 {"config", run.as_json.dump()},
                 {"layout", layout_json.dump()},
                 {"data_position", json{{"next_step", step}, {"sampler", "step-indexed"}}.dump()},
                 {"rng", rng.dump()},
                 {"optimizer", with_moments ? "adamw" : "none"},
                 {"adamw_steps", std::to_string(opt.steps_taken())}});
    } catch (const std::exception& e) {  // st::FileError, or the directory
      error = e.what();
    }
  }
  error = world.broadcast_string(error);
  if (!error.empty()) throw std::runtime_error("cannot save the checkpoint at step " + std::to_string(step) + ": " + error);
}

namespace {

// Where each parameter's shard goes in `arena` (laid out by `params`).
void weight_spans(const st::Reader& ckpt, const ArenaLayout& params, float* arena,
                  std::vector<st::LoadSpan>& spans) {
  for (const TensorInfo& t : params.tensors()) {
    if (t.adapter && !ckpt.find(t.name)) continue;  // init_from a base model (check_init_from)
    const st::TensorView* view = &ckpt.at(t.name);
    for_each_shard_run(t, [&](std::size_t full, std::size_t local, std::size_t n) {
      spans.push_back({view, full, n, arena + t.offset + local});
    });
  }
}

}  // namespace

void load_weights(const st::Reader& ckpt, const ArenaLayout& params, float* arena) {
  std::vector<st::LoadSpan> spans;
  weight_spans(ckpt, params, arena, spans);
  ckpt.load(std::move(spans));
}

void load_weights(const st::Reader& ckpt, GPT<float>& model) {
  load_weights(ckpt, model.param_layout(), model.params());
}

void load_checkpoint(const st::Reader& ckpt, GPT<float>& model, AdamW& opt) {
  std::vector<st::LoadSpan> spans;
  weight_spans(ckpt, model.param_layout(), model.params(), spans);
  opt.for_each_moment([&](const TensorInfo& t, std::size_t b, std::size_t e, float* pm, float* pv) {
    const st::TensorView* vm = &ckpt.at(kMomentM + t.name);
    const st::TensorView* vv = &ckpt.at(kMomentV + t.name);
    const std::size_t lb = b - t.offset;
    for_each_run_in(t, lb, e - t.offset, [&](std::size_t full, std::size_t local, std::size_t n) {
      spans.push_back({vm, full, n, pm + (local - lb)});
      spans.push_back({vv, full, n, pv + (local - lb)});
    });
  });
  ckpt.load(std::move(spans));  // one pass over the file, checksum included
  opt.set_steps_taken(meta_int(ckpt, "adamw_steps"));
}

}  // namespace ellm
