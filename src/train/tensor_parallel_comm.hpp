// The model's view of the tensor-parallel communicator (mpi::ProcessGrid::tp), and of the
// data-parallel one for the statistics a layer takes over the global batch: what the trainer and
// the inference commands hand to GPT<float> and Decoder<float>.
#pragma once
#include <cstddef>

#include "model/tensor_parallel.hpp"
#include "mpi/comm.hpp"

namespace ellm {

// The collectives call into `tp` and `dp`, which must outlive the result; their time is in the
// communicators' stats(). All-reduces move in buckets of ≤ bucket_bytes.
TensorParallel<float> tensor_parallel(mpi::Comm& tp, mpi::Comm& dp, std::size_t bucket_bytes, bool sequence);

}  // namespace ellm
