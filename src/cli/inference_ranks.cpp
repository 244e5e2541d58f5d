#include "cli/inference_ranks.hpp"

#include "train/tensor_parallel_comm.hpp"

namespace ellm::cli {

void check_inference_layout(const RunConfig& run, int world_size, const std::string& job_file) {
  const int dp = run.parallel.dp, tp = run.parallel.tp;
  if (dp != 1)
    throw JobError(job_file, "/parallel/dp",
                   "run \"" + run.name + "\": inference serves one model over parallel.tp ranks; parallel.dp = " +
                       std::to_string(dp) + " is not supported (allowed: 1)");
  if (world_size != tp)
    throw JobError(job_file, "/parallel/tp",
                   "run \"" + run.name + "\" serves its model on parallel.tp = " + std::to_string(tp) +
                       " ranks but the command was launched on " + std::to_string(world_size) +
                       "; launch with mpirun -np " + std::to_string(tp) + " or pass --set parallel.tp=" +
                       std::to_string(world_size));
}

InferenceRanks::InferenceRanks(mpi::Comm& world, const RunConfig& run)
    : grid(mpi::make_grid(world, run.parallel.tp)) {
  const std::size_t bucket_bytes = std::size_t(run.parallel.bucket_mib * 1024 * 1024);
  tp = tensor_parallel(grid.tp, grid.dp, bucket_bytes, /*sequence=*/false);
}

}  // namespace ellm::cli
