// Megatron-style tensor parallelism as the model sees it: which shard this rank holds, and the
// collectives its layers need. The trainer fills the collectives from the tensor-parallel
// MPI communicator; tests fill them with in-process threads. With size 1 they are never called.
//
// Sharding (Shoeybi et al. 2019): the first projection of each branch is column-parallel (each
// rank computes its heads / its slice of d_ff; model/parallel_linear.hpp), the branch's output
// projection is row-parallel (partial sums, one all-reduce in forward and one for the input
// gradient in backward; model/residual_stream.hpp); the tied embedding / LM head is
// vocabulary-parallel, with a cross-entropy that all-reduces row maxima and sums instead of
// gathering full logits. Tensors every rank holds whole but whose gradient each rank computes
// only in part declare it (TensorDecl::partial_grad) and are summed once after backward.
#pragma once
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <utility>

#include "model/expert_parallel.hpp"
#include "model/tensor.hpp"

namespace ellm {

struct TpShard {
  int rank = 0, size = 1;
  // Part `rank` of `total` split into `size` equal contiguous parts.
  std::pair<int, int> part(int total) const {
    return {rank * total / size, (rank + 1) * total / size};
  }
  // A shard along `dim` made of this rank's part of each [offset, offset + length) segment;
  // the whole tensor when size == 1.
  Shard along(int dim, std::initializer_list<std::pair<int, int>> segments) const {
    if (size == 1) return {};
    Shard s{dim, {}};
    for (const auto& [offset, length] : segments) {
      const auto [b, e] = part(length);
      s.ranges.push_back({offset + b, offset + e});
    }
    return s;
  }
};

// The data-parallel replicas, as far as the model sees them: only for a statistic that a layer
// defines over the global batch rather than this replica's rows (MoE's load balancing), so that
// every dp × tp layout trains the same model. Size 1: never called.
struct ReplicaSum {
  int size = 1;
  std::function<void(double*, std::size_t)> sum;  // in place, element-wise across the replicas
  void all_reduce_sum(double* x, std::size_t n) const {
    if (size > 1) sum(x, n);
  }
};

// Sequence parallelism (Korthikanti et al. 2022): between the tensor-parallel layers — norms,
// residual adds, their saved activations — each rank keeps only its 1/tp of the rows (tokens).
// A row-parallel output is reduce-scattered onto the row shards instead of all-reduced, and a
// column-parallel input all-gathered from them.
template <class T>
struct TensorParallel {
  TpShard shard;
  bool sequence = false;
  std::function<void(T*, std::size_t)> sum;  // in place, element-wise across the group
  std::function<void(T*, std::size_t)> max;
  // full (size·n) summed across the group; this rank's block [rank·n, (rank+1)·n) into mine (n)
  std::function<void(const T* full, T* mine, std::size_t n)> reduce_scatter;
  // every rank's block (n) into full (size·n), in rank order
  std::function<void(const T* mine, T* full, std::size_t n)> all_gather;
  // The other groups a layer may need, carried here so that one object reaches every layer:
  ReplicaSum replicas;         // the data-parallel group (MoE's global-batch statistics)
  ExpertParallel<T> experts;   // the expert-parallel group (MoE's dispatch)

  bool sequence_parallel() const { return sequence && shard.size > 1; }
  void all_reduce_sum(T* x, std::size_t n) const {
    if (shard.size > 1) sum(x, n);
  }
  void all_reduce_max(T* x, std::size_t n) const {
    if (shard.size > 1) max(x, n);
  }
};

}  // namespace ellm
