// The residual stream under tensor parallelism, and Megatron's conjugate collectives at the
// edges of the tensor-parallel region, each named where it runs:
// - into a column-parallel layer: the whole (N,C) input — the stream's rows themselves, or under
//   sequence parallelism all-gathered from the row shards (gather_from_sequence_parallel_region);
//   the input gradient each rank computes is partial and is summed on the way back
//   (copy_to_tensor_model_parallel_region's backward: reduce_partials);
// - out of a row-parallel layer: partial sums of the (N,C) output, all-reduced
//   (reduce_from_tensor_model_parallel_region) or, under sequence parallelism, reduce-scattered
//   onto the row shards (reduce_scatter_to_sequence_parallel_region); in backward the output
//   gradient is the whole (N,C) again (gather).
#pragma once
#include <cstddef>
#include <stdexcept>

#include "model/tensor_parallel.hpp"

namespace ellm {

template <class T>
class ResidualStream {
 public:
  ResidualStream(TensorParallel<T> tp, int seq_len, int d_model)
      : tp_(std::move(tp)), seq_len_(seq_len), C_(d_model) {}

  const TensorParallel<T>& tp() const { return tp_; }
  bool sequence_parallel() const { return tp_.sequence_parallel(); }
  // Rows of the stream this rank keeps for B sequences: all N = B·T, or its 1/tp under SP.
  int rows(int B) const { return sequence_parallel() ? B * seq_len_ / tp_.shard.size : B * seq_len_; }
  int first_row(int B) const { return sequence_parallel() ? tp_.shard.rank * rows(B) : 0; }

  // Where a row-parallel layer writes its (N,C) partial sums: the rows buffer itself (summed in
  // place), or under SP a separate (N,C) buffer that is reduce-scattered onto the rows.
  T* partial_buffer(T* rows, T* spare) const { return sequence_parallel() ? spare : rows; }
  // partial (N,C) summed over the group into rows (R,C).
  void reduce_partials(T* partial, T* rows, int B) const {
    if (!sequence_parallel() && partial != rows) {
      throw std::logic_error("reduce_partials: without sequence parallelism partial sums are reduced in place");
    }
    if (sequence_parallel()) {
      tp_.reduce_scatter(partial, rows, std::size_t(this->rows(B)) * C_);
    } else {
      tp_.all_reduce_sum(rows, std::size_t(B) * seq_len_ * C_);
    }
  }
  // The (N,C) input of a column-parallel layer: the rows themselves, or gathered into `full`.
  const T* gather(const T* rows, T* full, int B) const {
    if (!sequence_parallel()) return rows;
    tp_.all_gather(rows, full, std::size_t(this->rows(B)) * C_);
    return full;
  }

 private:
  TensorParallel<T> tp_;
  int seq_len_, C_;
};

}  // namespace ellm
