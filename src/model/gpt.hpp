// The decoder-only transformer: pre-norm blocks of causal self-attention and an MLP, tied
// embeddings, byte-level vocabulary. Parameters, gradients and activations are flat arenas
// (model/layout.hpp); forward and backward walk the same layers in opposite orders.
// T is float for training and double for the gradient-check reference.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/plan.hpp"

namespace ellm {

template <class T>
class GPT {
 public:
  // tp: this rank's tensor-parallel shard and collectives (default: the whole model).
  GPT(const ModelConfig& cfg, int max_batch, TensorParallel<T> tp = {});

  // Weights N(0, init_std), residual output projections scaled by 1/sqrt(2·n_layers) (GPT-2),
  // biases 0, norm gains 1. Every tensor is drawn whole and this rank keeps its shard, so any
  // tensor-parallel layout starts from the same model.
  void init_params(std::uint64_t seed);

  // tokens, targets (B,T) with B ≤ max_batch; returns the mean cross-entropy.
  double forward(const int* tokens, const int* targets, int B);
  // Accumulates d(mean loss)/d(params) of the last forward into grads(). grads_final(l) is called
  // as soon as the gradients of every tensor of layer ≥ l are complete (TensorInfo::layer): L after
  // the head and final norm, l after block l, -1 at the end — so their all-reduce can start.
  void backward(const std::function<void(int layer)>& grads_final = {});
  void zero_grad();

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& param_layout() const { return pl_; }
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }
  const T* grads() const { return grads_.data(); }
  std::size_t num_params() const { return params_.size(); }
  std::size_t param_bytes() const { return params_.size() * sizeof(T); }
  // Saved activations and every workspace of forward and backward.
  std::size_t activation_bytes() const {
    return (acts_.size() + scratch_.size() + mixer_scratch_.size() + full_.size() + ce_rows_.size()) *
           sizeof(T);
  }

 private:
  T* p(std::size_t off) { return off == kAbsent ? nullptr : params_.data() + off; }
  T* g(std::size_t off) { return off == kAbsent ? nullptr : grads_.data() + off; }
  T* a(std::size_t off) { return acts_.data() + off; }
  Arenas<T> arenas() { return {params_.data(), grads_.data(), acts_.data(), mixer_scratch_.data()}; }
  void norm_forward(T* out, T* mean, T* rstd, const T* inp, std::size_t w, std::size_t b, int N);
  void norm_backward(T* dinp, std::size_t w, std::size_t b, const T* dout, const T* inp,
                     const T* mean, const T* rstd, int N);
  void block_forward(int l, const T* x, int B);
  void block_backward(int l, const T* x, T* dres, int B);
  // Tensor- and sequence-parallel plumbing (sequence parallelism: tensor_parallel.hpp).
  int stream_rows(int B) const;
  int first_row(int B) const { return tp_.sequence_parallel() ? tp_.shard.rank * stream_rows(B) : 0; }
  T* partial_out(T* rows);
  void sum_partials(T* partial, T* rows, int B);
  const T* gather_rows(const T* rows, T* full, int B);

  ModelConfig cfg_;
  int max_batch_;
  TensorParallel<T> tp_;
  int vocab_begin_, vocab_local_, ff_local_;  // this rank's slices of the vocabulary and of d_ff
  ParamLayout pl_;
  ActLayout al_;
  std::vector<std::unique_ptr<AttentionMixer<T>>> mixers_;
  std::vector<T> params_, grads_, acts_;
  std::vector<T> positions_;  // (T,C) fixed sinusoidal table, or empty
  // Activation gradients, reused by every block: dres, dln (N,C); datty (N,width); dfch (N,F_in);
  // dfch_act (N,d_ff); and the mixers' backward workspace.
  std::vector<T> scratch_, mixer_scratch_, ce_rows_;
  std::vector<T> full_;  // (N,C) under sequence parallelism: partial sums and gathered rows
  // Sequence parallelism: a norm's gradients before its backward (2C), and its contribution (C).
  std::vector<T> norm_before_, norm_delta_;
  T *dres_, *dln_, *datty_, *dfch_, *dfch_act_;
  std::vector<int> tokens_, targets_;
  int batch_ = 0;
};

}  // namespace ellm
