// One training run on this rank: training of the GPT on the run's corpus (text or instructions) over a dp × tp grid
// of ranks (data parallelism over replicas, Megatron tensor parallelism within one).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/corpus.hpp"
#include "io/safetensors.hpp"
#include "efficientllm/config.hpp"
#include "metrics/window.hpp"
#include "mpi/comm.hpp"
#include "util/phases.hpp"

namespace ellm {

struct StepSample {
  double loss = 0;         // mean over the global batch's counted targets (identical on every rank)
  std::int64_t samples = 0;  // of the global batch: sequences, or instruction samples (packed)
  std::int64_t tokens = 0;   // of the global batch: targets the loss counts
  double lr = 0;
  double grad_norm = 0;    // before clipping
  double seconds = 0;      // this rank's wall time for the step
  double comm_seconds = 0; // of which blocked in MPI: tp + ep + dp seconds + the loss reduction
  double tp_seconds = 0;   // tensor-parallel all-reduces (forward and backward)
  double ep_seconds = 0;   // expert-parallel all-to-alls (MoE dispatch and combine)
  double dp_seconds = 0;   // data-parallel gradient sync (both replica groups), and MoE's
                           // global-batch statistics and routing log, which use the dp group
  PhaseSeconds phases{};   // the step's wall time by phase (util/phases.hpp), adding up to seconds
};

struct EvalSample {
  int step = 0;  // evaluated after this many optimizer steps
  double loss = 0;
};

struct RunRecord {
  std::vector<StepSample> steps;
  std::vector<EvalSample> evals;
  std::size_t num_params = 0;        // of the whole model (not this rank's shard)
  std::size_t trainable_params = 0;  // of which trainable
  double active_params_per_token = 0;  // weighted by the share of tokens using each tensor
  std::size_t local_params = 0;      // this rank's shard
  int dp_rank = 0, tp_rank = 0, ep_rank = 0;
  double wall_seconds = 0;            // whole run on this rank, evaluation included
  nlohmann::json arena_bytes;         // parameters, gradients, optimizer, activations
  std::string param_fingerprint;      // FNV-1a of this rank's final parameters: equal on every
                                      // rank holding the same tensor-parallel shard
  std::string replicated_fingerprint; // of the tensors every tp rank holds whole: equal everywhere
  nlohmann::json param_checksums;     // {tensor: [Σx, Σx², Σ±x]} of the whole final model
  nlohmann::json routing;             // mixture-of-experts layers (train/routing_log.hpp), or null
  // {"initialised_from": null or the file of model.init_from, "resumed_from": null or {"file",
  // "step", "layout"}, "saved": [{"step", "file", "bytes", "seconds"}]}: where the run started
  // from and the checkpoints it wrote (docs/CHECKPOINTS.md).
  nlohmann::json checkpoints = {{"initialised_from", nullptr},
                                {"resumed_from", nullptr},
                                {"saved", nlohmann::json::array()}};
  // null, or {"step", "loss", "grad_norm"} of the step whose loss or gradient norm was NaN or
  // infinite (as text then): the run stopped there; `steps` holds the steps before it.
  nlohmann::json diverged = nullptr;
  // null, or {"step", "signal", "checkpoint"}: SIGTERM/SIGINT arrived; the run stopped after
  // `step` steps and saved that checkpoint (train/interrupt.hpp).
  nlohmann::json interrupted = nullptr;
};

// Checkpoints of one run: where to write them and what to resume from (train/checkpoint.hpp).
struct CheckpointSetup {
  std::filesystem::path save_dir;      // empty: none written (run.checkpoint.save is false)
  std::filesystem::path interrupt_dir; // where a checkpoint goes when a stop signal arrives
  // A checkpoint check_resume accepted, or none. train_run lets go of it once loaded (its file
  // descriptor is closed).
  std::shared_ptr<const st::Reader> resume;
  int resume_step = 0;                 // its step (ResumePoint::step)
};

// Called on every rank after each step (the root prints progress from it).
using StepCallback = std::function<void(int step, const StepSample&)>;
using EvalCallback = std::function<void(const EvalSample&)>;
// Called once the arenas are allocated, with their total bytes (the memory sampler tracks them).
using ArenaCallback = std::function<void(std::uint64_t bytes)>;
// Called as the run enters each window (metrics/window.hpp): the samplers mark the edge.
using WindowCallback = std::function<void(Window)>;

// `world` holds run.parallel.dp × run.parallel.tp ranks.
// A resumed run takes steps ckpt.resume_step … training.steps − 1 (RunRecord::steps holds those).
RunRecord train_run(const RunConfig& run, const Corpus& corpus, mpi::Comm& world,
                    const StepCallback& on_step = {}, const EvalCallback& on_eval = {},
                    const ArenaCallback& on_arenas = {}, const WindowCallback& on_window = {},
                    CheckpointSetup ckpt = {});

}  // namespace ellm
