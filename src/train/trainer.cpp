#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "io/hf.hpp"
#include "io/peft.hpp"
#include "model/gpt.hpp"
#include "train/checkpoint.hpp"
#include "train/interrupt.hpp"
#include "mpi/grid.hpp"
#include "mpi/watchdog.hpp"
#include "train/expert_parallel_comm.hpp"
#include "train/tensor_parallel_comm.hpp"
#include "train/grad_sync.hpp"
#include "train/optimizer.hpp"
#include "train/routing_log.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

// FNV-1a over the bytes of the listed parts of the parameter arena.
std::string fingerprint(const float* params, const std::vector<ArenaRange>& parts) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const ArenaRange& r : parts) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(params + r.begin);
    for (std::size_t i = 0; i < (r.end - r.begin) * sizeof(float); i++) h = (h ^ bytes[i]) * 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The tensors every tensor-parallel rank holds whole (norms, row-parallel biases, positions).
std::vector<ArenaRange> replicated_tensors(const ArenaLayout& layout) {
  std::vector<ArenaRange> parts;
  for (const TensorInfo& t : layout.tensors()) {
    if (t.replicated()) parts.push_back({t.offset, t.offset + t.numel});
  }
  return parts;
}

// Per tensor of the whole model: Σx, Σx² and Σ x·s(i), s a fixed ±1 pattern over the element's
// index in the full tensor — figures any dp × tp layout must reproduce within float tolerance
// (a shard in the wrong place changes the third). Each rank counts its elements once per rank
// holding them, divided out, and the tensor-parallel group adds up.
nlohmann::json param_checksums(const GPT<float>& model, mpi::Comm& tp, mpi::Comm& ep) {
  const std::vector<TensorInfo>& tensors = model.param_layout().tensors();
  std::vector<double> sums(3 * tensors.size(), 0.0), experts(sums.size(), 0.0);
  for (std::size_t k = 0; k < tensors.size(); k++) {
    const TensorInfo& t = tensors[k];
    // experts split over the expert-parallel ranks add up over that group instead
    std::vector<double>& into = t.group == ReplicaGroup::ExpertDataParallel ? experts : sums;
    const double share = 1.0 / t.copies(tp.size());
    const float* x = model.params() + t.offset;
    for_each_shard_run(t, [&](std::size_t full, std::size_t local, std::size_t n) {
      for (std::size_t i = 0; i < n; i++) {
        const double v = x[local + i];
        const std::uint64_t h = (full + i) * 0x9E3779B97F4A7C15ull;
        into[3 * k] += v * share;
        into[3 * k + 1] += v * v * share;
        into[3 * k + 2] += ((h >> 40) & 1 ? v : -v) * share;
      }
    });
  }
  if (tp.size() > 1) tp.allreduce_sum(sums.data(), sums.size(), sums.size() * sizeof(double));
  if (ep.size() > 1) ep.allreduce_sum(experts.data(), experts.size(), experts.size() * sizeof(double));
  for (std::size_t i = 0; i < sums.size(); i++) sums[i] += experts[i];
  nlohmann::json out = nlohmann::json::object();
  for (std::size_t k = 0; k < tensors.size(); k++) {
    out[tensors[k].name] = {sums[3 * k], sums[3 * k + 1], sums[3 * k + 2]};
  }
  return out;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Mean validation loss over eval_batches global batches, each data-parallel rank evaluating its
// rows (the ranks of a tensor-parallel group evaluate the same rows together).
// With `timed`, each batch is also timed as one iteration of an evaluation-only run (its loss,
// lr and gradient norm left 0: the run's figure is the pass's mean loss), its first
// training.warmup_iters batches in the warm-up window and the others in the steps window.
double evaluate(GPT<float>& model, const BatchSampler& sampler, const TrainingConfig& t,
                mpi::Comm& dp, int rows, std::vector<int>& tokens, std::vector<int>& targets,
                mpi::ProcessGrid* timed = nullptr, std::vector<StepSample>* batches = nullptr,
                const WindowCallback& on_window = {}) {
  double sum = 0.0;
  for (int i = 0; i < t.eval_batches; i++) {
    if (batches && on_window) on_window(i < t.warmup_iters ? Window::warmup : Window::steps);
    const double t0 = now_seconds();
    const double tp0 = timed ? timed->tp.stats().seconds : 0, ep0 = timed ? timed->ep.stats().seconds : 0;
    const BatchCounts counts =
        sampler.val_batch(i, t.eval_batches, dp.rank() * rows, rows, tokens.data(), targets.data());
    sum += model.forward(tokens.data(), targets.data(), rows, double(counts.counted) / dp.size());
    if (!batches) continue;
    StepSample s;
    s.samples = counts.samples;
    s.tokens = counts.counted;
    s.seconds = now_seconds() - t0;
    s.tp_seconds = timed->tp.stats().seconds - tp0;
    s.ep_seconds = timed->ep.stats().seconds - ep0;
    s.comm_seconds = s.tp_seconds + s.ep_seconds;
    batches->push_back(s);
  }
  return dp.allreduce_sum(sum) / (double(t.eval_batches) * dp.size());
}

// The gradient's global L2 norm: each rank sums the squares of its share (its ZeRO-1 parts; a
// tensor replicated on k tensor-parallel ranks counting 1/k on each), the groups add them up.
// Expert tensors split over the expert-parallel ranks add their squares over that group.
double global_grad_norm(const GPT<float>& model, const GradientSync& sync,
                        const GradientSync& expert_sync, mpi::ProcessGrid& grid, bool zero1) {
  double squares = shared_square_sum(model.param_layout(), model.grads(), sync.owned(),
                                     grid.tp.size());
  if (grid.tp.size() > 1) squares = grid.tp.allreduce_sum(squares);
  if (zero1 && grid.dp.size() > 1) squares = grid.dp.allreduce_sum(squares);
  if (!expert_sync.owned().empty()) {
    const double experts = shared_square_sum(model.param_layout(), model.grads(),
                                             expert_sync.owned(), grid.tp.size());
    squares += grid.ep.size() > 1 ? grid.ep.allreduce_sum(experts) : experts;
  }
  return std::sqrt(squares);
}

// The full (tp = 1) form of the base tensors (adapters = false) or of the adapter tensors (true),
// by name, put together over the tensor-parallel group with a max-reduce: every rank fills the
// elements it holds and -inf elsewhere, and ranks holding the same element hold the same value,
// so the result is exact.
std::map<std::string, std::vector<float>> full_tensors(const GPT<float>& model, bool adapters, mpi::Comm& tp) {
  std::map<std::string, std::vector<float>> full;
  for (const TensorInfo& t : model.param_layout().tensors()) {
    if (t.adapter != adapters) continue;
    std::vector<float>& f = full[t.name];
    f.assign(t.full_numel, -std::numeric_limits<float>::infinity());
    insert_shard(model.params() + t.offset, t, f.data());
    if (tp.size() > 1) tp.allreduce_max(f.data(), f.size());
  }
  return full;
}

// Writes the model in the Hugging Face layout (world rank 0); fine-tuning adapters must have been
// merged into the base weights (GPT::merge_adapters).
void export_hf(const GPT<float>& model, const ModelConfig& m, const std::filesystem::path& dir,
               mpi::Comm& tp, mpi::Comm& world) {
  const std::map<std::string, std::vector<float>> full = full_tensors(model, false, tp);
  int max_positions = m.seq_len;
  if (!m.from_hf.empty()) max_positions = std::max(max_positions, hf::read_config(m.from_hf).max_positions);
  if (world.rank() == 0) hf::write_model(dir, m, max_positions, full);
}

// Writes the adapters alone in PEFT's layout (world rank 0; io/peft.hpp), whole tensors; the
// base model they adapt is model.from_hf's directory or model.init_from's checkpoint. A failed
// write ends the run on every rank.
void save_adapter(const GPT<float>& model, const ModelConfig& m, mpi::Comm& tp, mpi::Comm& world) {
  const std::map<std::string, std::vector<float>> full = full_tensors(model, true, tp);
  std::string error;
  if (world.rank() == 0) {
    try {
      const std::filesystem::path base = m.from_hf.empty() ? m.init_from : m.from_hf;
      peft::write_adapter(m.finetune.save_adapter, m, model.param_layout(), full, base.string());
    } catch (const st::FileError& e) {
      error = e.what();
    }
  }
  error = world.broadcast_string(error);
  if (!error.empty()) throw std::runtime_error("cannot save the adapter: " + error);
}

// Loads a checkpoint whose checksum is verified while it is read: a mismatch found on any rank
// ends the run on every rank, with st::FileError, before any step (no rank waits in a collective).
void load_on_every_rank(mpi::Comm& world, const st::Reader& ckpt, const std::function<void()>& load) {
  std::optional<st::FileError> error;
  try {
    load();
  } catch (const st::FileError& e) {
    error = e;
  }
  if (world.allreduce_max(error ? 1.0 : 0.0) == 0.0) return;
  if (!error) throw st::FileError(ckpt.path().string(), "", "another rank could not load it");
  throw *error;
}

// TEST ONLY (tests/e2e/watchdog.sh): ELLM_TEST_STALL="RANK:STEP:SECONDS" makes that world rank
// stop before the loss reduction of that step, as a rank stuck elsewhere (a livelock, a slow
// peer) would, while telling its own watchdog it is alive: its peers' watchdogs must find it.
void test_only_stall(int rank, int step) {
  static const char* spec = std::getenv("ELLM_TEST_STALL");
  int r = -1, s = -1;
  double seconds = 0;
  if (!spec || std::sscanf(spec, "%d:%d:%lf", &r, &s, &seconds) != 3 || r != rank || s != step) return;
  for (const double end = now_seconds() + seconds; now_seconds() < end;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    mpi::note_progress();
  }
}

}  // namespace

RunRecord train_run(const RunConfig& run, const Corpus& corpus, mpi::Comm& world,
                    const StepCallback& on_step, const EvalCallback& on_eval,
                    const ArenaCallback& on_arenas, const WindowCallback& on_window_given,
                    CheckpointSetup ckpt) {
  const WindowCallback on_window = on_window_given ? on_window_given : [](Window) {};
  const TrainingConfig& t = run.training;
  mpi::ProcessGrid grid = mpi::make_grid(world, run.parallel.tp, run.parallel.ep);
  const int dp = grid.dp.size();
  const int rows = t.batch_size / dp;  // this replica's micro-batch
  const std::size_t bucket_bytes = std::size_t(run.parallel.bucket_mib * 1024 * 1024);

  TensorParallel<float> groups = tensor_parallel(grid.tp, grid.dp, bucket_bytes, run.parallel.sequence_parallel);
  groups.experts = expert_parallel(grid.ep);
  GPT<float> model(run.model, rows, groups);
  model.init_params(derive_seed(t.seed, 0));  // same seed everywhere: shards of one model
  if (!run.model.from_hf.empty()) {  // checked in full when the job was loaded
    hf::load_weights(run.model.from_hf, hf::read_config(run.model.from_hf), model.param_layout(),
                     model.params());
  }
  RunRecord rec;
  if (!run.model.init_from.empty() && !ckpt.resume) {  // checked with the job (check_init_from)
    const st::Reader start = st::Reader::open(resolve_checkpoint(run.model.init_from), st::Checksum::verify_on_load);
    load_on_every_rank(world, start, [&] { load_weights(start, model); });
    rec.checkpoints["initialised_from"] = start.path().string();
  }
  if (!ckpt.resume) {  // a resume loads the adapters with the rest
    model.init_adapters();  // from the base now in place (PiSSA: the residual a saved adapter is relative to)
    const std::filesystem::path& adapter = run.model.finetune.adapter_from;  // checked with the job (check_adapter)
    if (!adapter.empty()) {
      peft::load_adapter(adapter, run.model, model.param_layout(), model.params());
      rec.checkpoints["adapter_from"] = adapter.string();
    }
  }
  // One gradient sync per replica group: the whole model over dp, experts split over ep over the
  // dp/ep ranks holding the same experts (none without expert parallelism).
  GradientSync sync(model.param_layout(), ReplicaGroup::DataParallel, bucket_bytes,
                    run.parallel.overlap, run.parallel.zero1, grid.dp);
  GradientSync expert_sync(model.param_layout(), ReplicaGroup::ExpertDataParallel, bucket_bytes,
                           run.parallel.overlap, false, grid.edp);
  AdamW opt(model.param_layout(), t, merge_owned(sync.owned(), expert_sync.owned()));
  // The sampler is step-indexed: a resumed run's data position is its first step.
  BatchSampler sampler(corpus, run.model.seq_len, t.batch_size, derive_seed(t.seed, 1));
  if (ckpt.resume) {
    load_on_every_rank(world, *ckpt.resume, [&] { load_checkpoint(*ckpt.resume, model, opt); });
    rec.checkpoints["resumed_from"] = {{"file", ckpt.resume->path().string()},
                                       {"step", ckpt.resume_step},
                                       {"layout", nlohmann::json::parse(ckpt.resume->metadata().at("layout"))}};
    ckpt.resume.reset();
  }
  const int first_step = rec.checkpoints["resumed_from"].is_null() ? 0 : ckpt.resume_step;
  std::vector<int> tokens(std::size_t(rows) * run.model.seq_len), targets(tokens.size());

  const ParamCounts counts = count_params(model.param_layout());
  rec.num_params = std::size_t(counts.total);
  rec.trainable_params = std::size_t(counts.trainable);
  rec.active_params_per_token = counts.active_per_token;
  rec.local_params = model.num_params();
  rec.dp_rank = grid.dp.rank();
  rec.tp_rank = grid.tp.rank();
  rec.ep_rank = grid.ep.rank();
  rec.arena_bytes = {{"parameters", model.param_bytes()},
                     {"gradients", model.grad_bytes()},  // trainable tensors only
                     {"optimizer", opt.state_bytes()},
                     {"activations", model.activation_bytes()}};
  if (on_arenas) {
    std::uint64_t total = 0;
    for (const auto& [arena, bytes] : rec.arena_bytes.items()) total += bytes.get<std::uint64_t>();
    on_arenas(total);
  }
  RoutingLog routing(model);
  const mpi::Watchdog watchdog(run.parallel.watchdog_s, world.rank(), world.host());
  const double run_start = now_seconds();
  world.barrier();  // start the first timed step together (outside the timed region)
  phase_clock_start();  // this thread's time by phase: each step keeps its difference

  if (t.steps == 0) {  // evaluation only: the timed window is the validation pass
    EvalSample e{0, evaluate(model, sampler, t, grid.dp, rows, tokens, targets, &grid, &rec.steps, on_window)};
    rec.evals.push_back(e);
    if (on_eval) on_eval(e);
  }
  for (int step = first_step; step < t.steps; step++) {
    on_window(step - first_step < t.warmup_iters ? Window::warmup : Window::steps);  // as latency counts them
    const PhaseSeconds phases0 = phase_clock_read();
    const double t0 = now_seconds();
    const double tp0 = grid.tp.stats().seconds, ep0 = grid.ep.stats().seconds,
                 dp0 = grid.dp.stats().seconds + grid.edp.stats().seconds;
    const BatchCounts counts =
        sampler.train_batch(step, grid.dp.rank() * rows, rows, tokens.data(), targets.data());
    model.zero_grad();
    // Adapter dropout: this step's masks, the same elements dropped under every layout.
    const DropoutDraw draw{derive_seed(derive_seed(t.seed, 2), std::uint64_t(step)), grid.dp.rank() * rows,
                           run.model.seq_len};
    model.set_adapter_dropout(&draw);
    // Every replica divides its summed loss by the global batch's counted targets over dp: the
    // replicas' mean is then the global batch's mean loss per counted target (docs/DATA.md).
    const double local_loss =
        model.forward(tokens.data(), targets.data(), rows, double(counts.counted) / dp);
    routing.record(model, grid.dp);
    model.backward([&](int layer) {
      sync.grads_final_from(layer, model.grads());
      expert_sync.grads_final_from(layer, model.grads());
    });
    model.set_adapter_dropout(nullptr);  // off at evaluation
    sync.finish(model.grads());
    expert_sync.finish(model.grads());
    model.reduce_tensor_parallel_grads();
    StepSample s;
    // Average over replicas and clip in one scale: each replica's loss is a mean over its rows.
    const double norm = global_grad_norm(model, sync, expert_sync, grid, run.parallel.zero1) / dp;
    const double scale = clip_scale(norm, t.grad_clip) / dp;
    s.lr = learning_rate(t, step);
    opt.step(model.params(), model.grads(), s.lr, scale);
    sync.gather_params(model.params());
    s.dp_seconds = grid.dp.stats().seconds + grid.edp.stats().seconds - dp0;
    test_only_stall(world.rank(), step);
    s.loss = dp > 1 ? grid.dp.allreduce_sum(local_loss) / dp : local_loss;
    s.grad_norm = norm;
    s.samples = counts.samples;
    s.tokens = counts.counted;
    s.seconds = now_seconds() - t0;
    s.phases = phase_clock_read() - phases0;
    s.tp_seconds = grid.tp.stats().seconds - tp0;
    s.ep_seconds = grid.ep.stats().seconds - ep0;
    s.comm_seconds = s.tp_seconds + s.ep_seconds + (grid.dp.stats().seconds + grid.edp.stats().seconds - dp0);
    // Every rank sees the same loss and norm (both reduced), but maybe not a stop signal (it may
    // reach some ranks only): one small sum makes every rank stop at the same step.
    double stop[2] = {std::isfinite(s.loss) && std::isfinite(s.grad_norm) ? 0.0 : 1.0, double(stop_signal())};
    world.allreduce_sum(stop, 2, sizeof stop);
    if (stop[0] > 0) {
      const auto value = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(std::to_string(x)); };
      rec.diverged = {{"step", step}, {"loss", value(s.loss)}, {"grad_norm", value(s.grad_norm)}};
      break;
    }
    rec.steps.push_back(s);
    mpi::note_progress();
    if (on_step) on_step(step, s);

    const bool last = step + 1 == t.steps;
    if (last || (t.eval_every > 0 && (step + 1) % t.eval_every == 0)) {
      on_window(Window::evaluation);
      EvalSample e{step + 1, evaluate(model, sampler, t, grid.dp, rows, tokens, targets)};
      rec.evals.push_back(e);
      if (on_eval) on_eval(e);
    }
    const bool save_now = !ckpt.save_dir.empty() && (last || (run.checkpoint.every > 0 && (step + 1) % run.checkpoint.every == 0));
    if (save_now) {
      on_window(Window::checkpoint);
      const double c0 = now_seconds();
      const std::filesystem::path file = checkpoint_file(ckpt.save_dir, run, step + 1);
      save_checkpoint(file, run, step + 1, model, opt, grid, world);
      rec.checkpoints["saved"].push_back({{"step", step + 1}, {"file", file.string()},
                                          {"bytes", world.is_root() ? std::filesystem::file_size(file) : 0},
                                          {"seconds", now_seconds() - c0}});
    }
    // A stop signal: this step is done (evaluated and saved as planned); save it unless that
    // was just done, and end the run. At the last step the run simply completes.
    if (stop[1] > 0 && !last) {
      const bool resumable = save_now && run.checkpoint.optimizer;  // the same on every rank
      const std::filesystem::path file = checkpoint_file(resumable ? ckpt.save_dir : ckpt.interrupt_dir, run, step + 1);
      if (!resumable) {
        on_window(Window::checkpoint);
        RunConfig with_moments = run;
        with_moments.checkpoint.optimizer = true;  // what a resume needs
        save_checkpoint(file, with_moments, step + 1, model, opt, grid, world);
      }
      rec.interrupted = {{"step", step + 1}, {"signal", signal_name(stop_signal())}, {"checkpoint", file.string()}};
      break;
    }
  }
  phase_clock_stop();
  on_window(Window::finish);
  rec.wall_seconds = now_seconds() - run_start;
  rec.param_fingerprint = fingerprint(model.params(), {{0, model.num_params()}});
  rec.replicated_fingerprint = fingerprint(model.params(), replicated_tensors(model.param_layout()));
  rec.param_checksums = param_checksums(model, grid.tp, grid.ep);
  rec.routing = routing.report();
  if (!run.model.finetune.save_adapter.empty() && rec.interrupted.is_null())
    save_adapter(model, run.model, grid.tp, world);  // before export_hf merges the adapters
  if (!t.export_hf.empty() && rec.interrupted.is_null()) {
    if (run.model.finetune.adapters()) model.merge_adapters(+1);  // the adapted model, merged
    export_hf(model, run.model, t.export_hf, grid.tp, world);
  }
  return rec;
}

}  // namespace ellm
