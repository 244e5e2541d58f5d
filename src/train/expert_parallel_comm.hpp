// The model's view of expert parallelism, filled from the expert-parallel communicator
// (mpi::ProcessGrid::ep), as trainer.cpp's tensor_parallel() fills TensorParallel from tp.
#pragma once
#include "model/expert_parallel.hpp"
#include "mpi/comm.hpp"

namespace ellm {

// The exchanges call into `ep`, which must outlive the result; their time is in ep.stats().
ExpertParallel<float> expert_parallel(mpi::Comm& ep);

}  // namespace ellm
