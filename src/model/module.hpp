// What every module of a block shares: its view of the model's arenas, and the costs it reports
// to the metrics (the FLOPs convention is in src/metrics/flops.hpp).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm {

// Inference: linear layers whose weights are served from a copy other than the parameter
// arena's (src/infer/linear_store.hpp: quantized once at load), keyed by the weight's offset.
struct LinearWeights {
  virtual ~LinearWeights() = default;
  // y (N,out) = x (N,in) · Wᵀ from the copy of the weight at arena offset w; false: there is no
  // copy, and the caller uses the arena's fp32 weight.
  virtual bool matmul(std::size_t w, int out, int in, const float* x, int N, float* y) const = 0;
  // A weight (out, in) at arena offset w that the forward may multiply by though this call does
  // not (a mixture of experts' experts no token of the chunk was routed to): the decoder's
  // search for its linear layers (Decoder::linear_layers) lists it too. Serving ignores it.
  virtual void expect(std::size_t /*w*/, int /*out*/, int /*in*/) const {}
};

// The draw of fine-tuning adapters' dropout masks for one training step (docs/PEFT.md): each
// element's keep/drop is a counter-based hash of (seed, adapter, global sample, position, input
// feature), so every dp × tp layout drops the same elements.
struct DropoutDraw {
  std::uint64_t seed = 0;  // the step's: derived from training.seed and the step
  int first_sample = 0;    // the global index of this replica's first sample
  int seq_len = 1;         // rows per sample
};

// The model's arenas; a module's offsets index into them.
template <class T>
struct Arenas {
  T* params;
  T* grads;
  T* acts;
  T* scratch;  // workspace of forward and backward, shared by all layers (one runs at a time):
               // its contents do not survive from one call to the next
  const LinearWeights* linear = nullptr;  // inference only: served linear weights, or none
  // The gradient arena's size: the trainable prefix of a split layout (ArenaLayout), past which
  // the frozen tensors lie. Everything when unsplit.
  std::size_t grad_elems = kAbsent;
  const DropoutDraw* dropout = nullptr;  // training with adapter dropout: the step's draw; nullptr: off
  T* p(std::size_t off) const { return off == kAbsent ? nullptr : params + off; }
  // A frozen tensor's gradient is nullptr: layers skip what only it would need (the weight
  // gradient's GEMM of a frozen linear).
  T* g(std::size_t off) const { return off == kAbsent || off >= grad_elems ? nullptr : grads + off; }
  T* a(std::size_t off) const { return acts + off; }
  Arenas with_scratch(T* s) const { return {params, grads, acts, s, linear, grad_elems, dropout}; }
};

// What one module costs per token, from its configuration alone (no arenas needed).
struct ModuleCost {
  double matmul_weights = 0;        // weights in matrix products: 2 forward FLOPs each per token
  double other_flops_per_token = 0; // other counted forward FLOPs: attention scores and values
  double cache_elems_per_token = 0; // inference state that grows with the context (KV cache)
  double state_elems_per_sequence = 0;  // inference state of fixed size (a recurrent state)
  ModuleCost& operator+=(const ModuleCost& o) {
    matmul_weights += o.matmul_weights;
    other_flops_per_token += o.other_flops_per_token;
    cache_elems_per_token += o.cache_elems_per_token;
    state_elems_per_sequence += o.state_elems_per_sequence;
    return *this;
  }
};

// One module's inference state for a batch of sequences (docs/ARCHITECTURE.md, "Cached
// decoding"): a KV cache, a latent cache or a recurrent state. Each module makes and reads its own.
struct MixerCache {
  virtual ~MixerCache() = default;
};

// GPT-2's initialisation of the projections that write into the residual stream: the init std
// scaled by 1/sqrt(2·n_layers), so the stream's variance does not grow with depth.
inline Init residual_init(const ModelConfig& m) {
  return Init::normal(m.init_std / std::sqrt(2.0 * m.n_layers));
}

}  // namespace ellm
