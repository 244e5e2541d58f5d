// The decoder-only language model: token (and optionally position) embeddings, a stack of blocks
// (model/block.hpp: each layer's wiring, token mixer and channel mixer), a final norm and the
// LM head (tied with the token embedding, or its own tensor) over model.vocab_size tokens (256
// bytes by default, docs/DATA.md). Parameters, gradients and activations are flat arenas
// (model/tensor.hpp); forward and backward walk the same layers in opposite orders.
// T is float for training and double for the gradient-check reference.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/plan.hpp"

namespace ellm {

// The elements of every buffer a GPT allocates, from its plan alone (nothing is allocated): the
// constructor sizes its buffers from this, and `efficientllm estimate` reports it, so the estimate
// cannot drift from what a run allocates.
struct ModelBufferSizes {
  std::size_t params = 0, grads = 0, acts = 0;  // the arenas (grads: the trainable prefix only)
  std::size_t scratch = 0;        // the head's and embeddings' workspace: dres, dln (and full, SP)
  std::size_t block_scratch = 0;  // the largest block's workspace, shared by all blocks
  std::size_t ce_rows = 0;        // cross-entropy's per-row maxima, sums and losses
  std::size_t partial_pack = 0;   // partial gradients packed for their tensor-parallel sum
  std::size_t positions = 0;      // the fixed sinusoidal position table (T,C), or none
  std::size_t workspaces() const { return scratch + block_scratch + ce_rows + partial_pack + positions; }
};
template <class T>
ModelBufferSizes model_buffer_sizes(const ModelPlan<T>& plan, const ModelConfig& cfg, int max_batch, int tp_size);

template <class T>
class GPT {
 public:
  // tp: this rank's tensor-parallel shard and collectives (default: the whole model).
  GPT(const ModelConfig& cfg, int max_batch, TensorParallel<T> tp = {});

  // Every tensor as it declared (init_tensors: the same model under any tensor-parallel layout).
  void init_params(std::uint64_t seed);

  // tokens, targets (B,T) with B ≤ max_batch; returns the language-model loss: the cross-entropy
  // summed over the counted targets (those ≥ 0; layers::kIgnoredTarget is skipped) and divided by
  // `divisor`, by default the number of counted targets (the mean). Data parallelism passes the
  // global batch's count over dp so that every replica divides by the same figure (docs/DATA.md).
  // The objective that backward differentiates adds aux_loss().
  double forward(const int* tokens, const int* targets, int B, double divisor = 0);
  // The routed layers' objective terms of the last forward (load balancing and z-loss, summed
  // over the layers; 0 for a dense model), never part of the reported loss or perplexity.
  double aux_loss() const;
  // Layer l's routing in the last forward (MoE layers), or nullptr.
  const RoutingStats* routing(int l) const { return plan_.blocks[l]->routing(); }
  // Accumulates d(mean loss)/d(params) of the last forward into grads(). grads_final(l) is called
  // as soon as the gradients of every tensor of layer ≥ l are complete (TensorInfo::layer): L after
  // the head and final norm, l after block l, -1 at the end — so their all-reduce can start.
  // Tensors declared partial_grad hold this rank's part until reduce_tensor_parallel_grads().
  void backward(const std::function<void(int layer)>& grads_final = {});
  // Sums the partial gradients (TensorDecl::partial_grad) over the tensor-parallel ranks that
  // hold each of them: once per optimizer step, after every backward that accumulates into it.
  void reduce_tensor_parallel_grads();
  void zero_grad();
  // Fine-tuning adapters (model/adapter.hpp): their start from the base weights now in the arena
  // (DoRA's magnitude, PiSSA's factors and residual) — once, after the base is initialised,
  // imported or loaded and before training; merged into the base (sign +1) or taken out (−1).
  void init_adapters();
  void merge_adapters(int sign);
  // Gradient checks of DoRA: forward keeps the row norms of the last one (LinearAdapter::hold_norms).
  void hold_adapter_norms(bool hold);
  // Adapter dropout (finetune.dropout) in the following forwards and backwards with this draw
  // (copied); nullptr: off, as at evaluation.
  void set_adapter_dropout(const DropoutDraw* draw) {
    dropout_on_ = draw != nullptr;
    if (draw) dropout_ = *draw;
  }

  // The last forward's next-token probabilities (N, V/tp), this rank's vocabulary slice; backward
  // turns them into the logits' gradient.
  const T* probabilities() const { return acts_.data() + plan_.logits; }
  const ModelConfig& config() const { return cfg_; }
  const ArenaLayout& param_layout() const { return plan_.params; }
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }
  const T* params() const { return params_.data(); }
  const T* grads() const { return grads_.data(); }
  std::size_t num_params() const { return params_.size(); }
  // The gradient arena: the trainable tensors only (frozen ones have no gradient).
  std::size_t num_grads() const { return grads_.size(); }
  std::size_t grad_bytes() const { return grads_.size() * sizeof(T); }
  std::size_t param_bytes() const { return params_.size() * sizeof(T); }
  // Saved activations and every workspace of forward and backward (ModelBufferSizes: acts + workspaces()).
  std::size_t activation_bytes() const {
    return (acts_.size() + scratch_.size() + block_scratch_.size() + ce_rows_.size() +
            partial_pack_.size() + positions_.size()) * sizeof(T);
  }

 private:
  T* p(std::size_t off) { return off == kAbsent ? nullptr : params_.data() + off; }
  T* g(std::size_t off) { return arenas().g(off); }
  T* a(std::size_t off) { return acts_.data() + off; }
  Arenas<T> arenas() {
    return {params_.data(), grads_.data(), acts_.data(), block_scratch_.data(), nullptr, grads_.size(),
            dropout_on_ ? &dropout_ : nullptr};
  }
  const T* block_input(int l) { return l == 0 ? a(plan_.encoded) : a(plan_.blocks[l - 1]->output()); }

  ModelConfig cfg_;
  int max_batch_;
  ModelPlan<T> plan_;
  const ResidualStream<T>& stream_;
  int vocab_begin_, vocab_local_;  // this rank's slice of the vocabulary
  std::vector<T> params_, grads_, acts_;
  std::vector<T> positions_;  // (T,C) fixed sinusoidal table, or empty
  // The head's and embeddings' workspace: dres (R,C) the residual stream's gradient, dln (N,C),
  // and under sequence parallelism full (N,C) for partial sums and gathered rows.
  std::vector<T> scratch_, block_scratch_, ce_rows_;
  T *dres_, *dln_, *full_;
  std::vector<const TensorInfo*> partial_;  // tensors with partial gradients
  std::vector<T> partial_pack_;             // their full shapes, back to back
  std::vector<int> tokens_, targets_;
  int batch_ = 0;
  double divisor_ = 1;  // of the last forward
  // The lowest layer (TensorInfo::layer) holding a trainable tensor: backward stops above it
  // (nothing below would use the gradient it carries down).
  int lowest_trainable_ = -1;
  DropoutDraw dropout_;
  bool dropout_on_ = false;
};

}  // namespace ellm
