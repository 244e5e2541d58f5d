// Data-parallel gradient synchronisation: the schedule of the gradient all-reduce.
//
// One GradientSync serves one replica group (TensorDecl::group) over its communicator: its
// buckets hold the trainable tensors of that group only (frozen tensors are in none).
// Buckets are contiguous slices of the gradient arena of at most bucket_bytes, formed in reverse
// arena order — final norm, last block … first block, embeddings — the order backward finishes
// them in (TensorInfo::layer: -1 embeddings, 0…L−1 blocks, L the final norm).
// - Overlap: a bucket's non-blocking all-reduce starts as soon as backward has finished every
//   layer it holds, and MPI is given a chance to progress it after each later layer; finish()
//   waits for the rest. What finish() still waits for is the communication the overlap did not
//   hide.
// - ZeRO-1 (Rajbhandari et al. 2020): each rank owns an equal part of every bucket. Gradients are
//   reduce-scattered after backward (not overlapped), the optimizer updates only the owned parts
//   (its moments cover nothing else), and the updated parameters are all-gathered.
// - Neither: one blocking all-reduce per bucket after backward.
#pragma once
#include <cstddef>
#include <vector>

#include "model/tensor.hpp"
#include "mpi/comm.hpp"

namespace ellm {

struct GradientBucket {
  std::size_t begin, end;
  int layer;                // the lowest layer it holds: final once backward is done with it
  std::vector<int> parts;   // ZeRO-1: rank r owns [begin + parts[r], begin + parts[r+1])
  bool started = false;
};

// One replica group's buckets and what this rank updates, from the layout alone (no communicator):
// GradientSync follows it, and so does the memory estimate (train/estimate.hpp).
struct BucketPlan {
  std::vector<GradientBucket> buckets;  // in the order backward finishes them
  std::vector<ArenaRange> owned;        // every bucket (merged), or with ZeRO-1 this rank's part of each
  std::size_t part_elems = 0;           // ZeRO-1: the reduced-part buffer's elements (else 0)
};
// zero1 applies only when dp_size > 1.
BucketPlan plan_buckets(const ArenaLayout& params, ReplicaGroup group, std::size_t bucket_bytes, bool zero1,
                        int dp_rank, int dp_size);

// The parts of the arena this rank updates: those of both replica groups, in arena order.
std::vector<ArenaRange> merge_owned(std::vector<ArenaRange> a, const std::vector<ArenaRange>& b);

class GradientSync {
 public:
  GradientSync(const ArenaLayout& params, ReplicaGroup group, std::size_t bucket_bytes,
               bool overlap, bool zero1, mpi::Comm& dp);

  // Backward has finished every layer ≥ `layer`: start the buckets that became final.
  void grads_final_from(int layer, float* grads);
  // After backward: grads hold the sum over replicas — all of them, or with ZeRO-1 the owned parts.
  void finish(float* grads);
  // The parts of the arena this rank updates: every bucket, or with ZeRO-1 its part of each.
  const std::vector<ArenaRange>& owned() const { return owned_; }
  // After the update, with ZeRO-1: every owner's parameters to every rank.
  void gather_params(float* params);

 private:
  using Bucket = GradientBucket;
  std::vector<Bucket> buckets_;  // in the order backward finishes them
  std::vector<ArenaRange> owned_;
  bool overlap_, zero1_;
  mpi::Comm& dp_;
  mpi::Requests pending_;
  std::vector<float> part_;  // ZeRO-1: one bucket part, reduced
};

}  // namespace ellm
