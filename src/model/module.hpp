// What every module of a block shares: its view of the model's arenas, and the costs it reports
// to the metrics (the FLOPs convention is in src/metrics/flops.hpp).
#pragma once
#include <cmath>
#include <cstddef>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm {

// The model's arenas; a module's offsets index into them.
template <class T>
struct Arenas {
  T* params;
  T* grads;
  T* acts;
  T* scratch;  // workspace of forward and backward, shared by all layers (one runs at a time):
               // its contents do not survive from one call to the next
  T* p(std::size_t off) const { return off == kAbsent ? nullptr : params + off; }
  T* g(std::size_t off) const { return off == kAbsent ? nullptr : grads + off; }
  T* a(std::size_t off) const { return acts + off; }
  Arenas with_scratch(T* s) const { return {params, grads, acts, s}; }
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

// GPT-2's initialisation of the projections that write into the residual stream: the init std
// scaled by 1/sqrt(2·n_layers), so the stream's variance does not grow with depth.
inline Init residual_init(const ModelConfig& m) {
  return Init::normal(m.init_std / std::sqrt(2.0 * m.n_layers));
}

}  // namespace ellm
