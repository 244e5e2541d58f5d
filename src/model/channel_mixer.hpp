// The channel mixer of a block: the per-token sublayer (the dense MLP today; a mixture of experts
// implements the same interface, adding its auxiliary loss and its own communicator:
// docs/ARCHITECTURE.md). Like a token mixer it maps the normalised x (B,T,C) to this rank's
// partial sum of its output (B,T,C).
#pragma once
#include <cstddef>
#include <memory>

#include "efficientllm/config.hpp"
#include "model/module.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

template <class T>
class ChannelMixer {
 public:
  virtual ~ChannelMixer() = default;
  virtual std::size_t scratch_elems(int B) const = 0;  // as TokenMixer::scratch_elems
  // out (B,T,C) ← this rank's partial sum of the output for x (B,T,C).
  virtual void forward(const Arenas<T>& a, const T* x, T* out, int B) = 0;
  // dx (B,T,C) overwritten with this rank's part of ∂L/∂x from dout (B,T,C), the gradient of the
  // whole output; parameter gradients accumulate.
  virtual void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) = 0;
};

// Declares layer `d.layer`'s channel-mixer tensors and returns the mixer (`m`: the layer's config).
template <class T>
std::unique_ptr<ChannelMixer<T>> make_channel_mixer(const ModelConfig& m, int max_batch,
                                                    const Declarer& d, const TensorParallel<T>& tp);

ModuleCost channel_mixer_cost(const ModelConfig& m);

}  // namespace ellm
