// The linear layers of a tensor-parallel block, by how they shard (Megatron's names).
// - ColumnParallelLinear: W (out, in) split by output rows; each rank computes its slice of the
//   outputs from the whole input, and its input gradient is partial (the stream sums it). Its
//   weight may be several adjacent tensors (GQA's q and kv, whose replication differs) computed
//   by one GEMM; a tensor every rank holds whole is the degenerate case (MLA's down-projections).
// - RowParallelLinear: W (out, in) split by input columns; each rank computes a partial sum of
//   the whole output from its slice of the input. The bias is added by tensor-parallel rank 0
//   only, since the partial sums are added up.
// The collectives themselves run in the caller (model/residual_stream.hpp, model/block.cpp), once
// per branch rather than once per layer.
// Either may carry fine-tuning adapters (model/adapter.hpp), added after the base in forward;
// a frozen weight has no gradient (Arenas::g), so its backward skips the weight-gradient GEMM.
#pragma once
#include <cstddef>
#include <type_traits>
#include <vector>

#include "layers/linear.hpp"
#include "model/adapter.hpp"
#include "model/module.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

// y (N,out) = x (N,in) · Wᵀ + b for the weight at arena offset w: at inference from its served
// (quantized) copy when the arenas carry one (Arenas::linear), else the arena's.
template <class T>
void linear_project(const Arenas<T>& a, std::size_t w, const T* b, const T* x, T* y, int N, int in,
                    int out) {
  if constexpr (std::is_same_v<T, float>) {
    if (a.linear && a.linear->matmul(w, out, in, x, N, y)) {
      if (b) {
        for (int n = 0; n < N; n++)
          for (int o = 0; o < out; o++) y[std::size_t(n) * out + o] += b[o];
      }
      return;
    }
  }
  layers::linear_forward(y, x, a.p(w), b, N, in, out);
}

template <class T>
struct ColumnParallelLinear {
  std::size_t w = kAbsent, b = kAbsent;  // the first weight / bias part; the rest follow it
  int in = 0, out = 0;                   // out: this rank's output columns
  bool served = true;  // false: inference keeps the arena's fp32 weight (small low-rank mixes)

  // The weight parts (full shapes (rows_i, in), each with its shard) are declared back to back,
  // then the bias parts (none: no bias).
  void declare(const Declarer& d, int in_features, std::vector<TensorDecl> weights,
               std::vector<TensorDecl> biases = {}) {
    in = in_features;
    for (std::size_t i = 0; i < weights.size(); i++) {
      const std::size_t off = d.param(std::move(weights[i]));
      if (i == 0) w = off;
      out += d.params.tensors().back().shape[0];
    }
    for (std::size_t i = 0; i < biases.size(); i++) {
      const std::size_t off = d.param(std::move(biases[i]));
      if (i == 0) b = off;
    }
  }
  // Adapters on ranges of the output rows (after declare; model/adapter.hpp).
  void adapt(const Declarer& d, const FinetuneConfig& f,
             const std::vector<typename LinearAdapter<T>::Target>& targets, int max_rows) {
    adapter.declare_column(d, f, in, out, targets, max_rows);
  }
  // y (N,out) = x (N,in) · Wᵀ + b (+ the adapters)
  void forward(const Arenas<T>& a, const T* x, T* y, int N) const {
    if (served) {
      linear_project(a, w, a.p(b), x, y, N, in, out);
    } else {
      layers::linear_forward(y, x, a.p(w), a.p(b), N, in, out);
    }
    adapter.forward(a, x, a.p(b), y, N);
  }
  // dx (N,in) = dy · W (overwritten; nullptr skips it); dW, db accumulate.
  void backward(const Arenas<T>& a, T* dx, const T* dy, const T* x, int N) const {
    const T* dyb = adapter.output_grad(a, dy, N);
    layers::linear_backward(dx, a.g(w), a.g(b), dyb, x, a.p(w), N, in, out);
    adapter.backward(a, dx, dyb, x, N);
  }
  // As backward, but dx += dy · W: an input that feeds several projections.
  void backward_accumulate(const Arenas<T>& a, T* dx, const T* dy, const T* x, int N) const {
    const T* dyb = adapter.output_grad(a, dy, N);
    layers::linear_backward_accumulate(dx, a.g(w), a.g(b), dyb, x, a.p(w), N, in, out);
    adapter.backward(a, dx, dyb, x, N);
  }
  LinearAdapter<T> adapter;
};

template <class T>
struct RowParallelLinear {
  std::size_t w = kAbsent, b = kAbsent;
  int in = 0, out = 0;  // in: this rank's input columns
  bool adds_bias = true;

  // W (out, in_full) split by columns over tp; bias (out) replicated, if with_bias.
  void declare(const Declarer& d, const std::string& name, int in_full, int out_features,
               Init init, bool with_bias, const TpShard& tp) {
    out = out_features;
    in = in_full / tp.size;
    w = d.param(weight(name + ".w", {out, in_full}, std::move(init)).sharded(tp.along(1, {{0, in_full}})));
    if (with_bias) b = d.param(bias(name + ".b", {out}));
    adds_bias = tp.rank == 0;
  }
  // The adapter of target module `target` (after declare; model/adapter.hpp).
  void adapt(const Declarer& d, const FinetuneConfig& f, const std::string& target, int in_full,
             const TpShard& tp, int max_rows) {
    adapter.declare_row(d, f, target, w, in_full, out, tp, max_rows);
  }
  // y (N,out) = this rank's partial sum x (N,in) · Wᵀ (+ b on rank 0) (+ the adapter's part)
  void forward(const Arenas<T>& a, const T* x, T* y, int N) const {
    const T* bias_here = adds_bias ? a.p(b) : static_cast<T*>(nullptr);
    linear_project(a, w, bias_here, x, y, N, in, out);
    adapter.forward(a, x, bias_here, y, N);
  }
  // dx (N,in) = dy · W; dy (N,out) is the whole output's gradient, so db is the same everywhere.
  void backward(const Arenas<T>& a, T* dx, const T* dy, const T* x, int N) const {
    const T* dyb = adapter.output_grad(a, dy, N);
    layers::linear_backward(dx, a.g(w), a.g(b), dyb, x, a.p(w), N, in, out);
    adapter.backward(a, dx, dyb, x, N);
  }
  LinearAdapter<T> adapter;
};

}  // namespace ellm
