// The ranks an inference command (generate, bench-infer) serves one model on: a single
// tensor-parallel group of parallel.tp ranks, each holding its shard of the model
// (docs/INFERENCE.md, "Tensor-parallel inference"). Inference has no data parallelism: the
// layout must be dp = 1 and the launch exactly tp ranks.
#pragma once
#include <string>

#include "efficientllm/config.hpp"
#include "model/tensor_parallel.hpp"
#include "mpi/grid.hpp"

namespace ellm::cli {

// Throws JobError naming the field when `run` cannot be served on `world` (the same on every
// rank, so every rank throws before any collective).
void check_inference_layout(const RunConfig& run, int world_size, const std::string& job_file);

// The group and the model's view of it. Not copyable: the collectives refer to `grid`.
struct InferenceRanks {
  InferenceRanks(mpi::Comm& world, const RunConfig& run);
  InferenceRanks(const InferenceRanks&) = delete;
  InferenceRanks& operator=(const InferenceRanks&) = delete;

  mpi::ProcessGrid grid;
  TensorParallel<float> tp;
};

}  // namespace ellm::cli
