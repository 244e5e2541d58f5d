// The channel mixer of a block: the per-token sublayer (the dense MLP today; a mixture of experts
// implements the same interface, adding its auxiliary loss and its own communicator:
// docs/ARCHITECTURE.md). Like a token mixer it maps the normalised x (B,T,C) to this rank's
// partial sum of its output (B,T,C).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/adapter.hpp"
#include "model/module.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

// What a routed channel mixer (MoE) did in its last forward: its terms of the training objective
// (coefficients included; their gradients are part of its backward) and the routing, for the
// report. The language-model loss and the perplexity never include them.
struct RoutingStats {
  double aux_loss = 0;                 // load balancing: coeff · E · Σ f_i · P_i
  double z_loss = 0;                   // coeff · mean over tokens of logsumexp(router logits)²
  std::vector<double> expert_tokens;   // (E) assignments routed to each expert
  double dropped = 0;                  // assignments over an expert's capacity
};

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
  // Cached decoding (as TokenMixer's): a per-token mixer keeps nothing (nullptr); RWKV's channel
  // mix keeps the previous token's input. Throws std::invalid_argument when it cannot decode.
  virtual std::unique_ptr<MixerCache> make_cache(int /*B*/) const { return nullptr; }
  // out (B,c,C) ← this rank's partial sum of the output for x (B,c,C), tokens pos0…pos0+c−1.
  virtual void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c,
                             MixerCache* cache) = 0;
  // The last forward's routing, or nullptr for a mixer that routes nothing.
  virtual const RoutingStats* routing() const { return nullptr; }
  // f(adapter) for each of its linears' fine-tuning adapters (model/adapter.hpp).
  virtual void for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& /*f*/) const {}
};

// Declares layer `d.layer`'s channel-mixer tensors and returns the mixer (`m`: the layer's config),
// or nullptr for mlp "none".
template <class T>
std::unique_ptr<ChannelMixer<T>> make_channel_mixer(const ModelConfig& m, int max_batch,
                                                    const Declarer& d, const TensorParallel<T>& tp);

// The dense MLP of hidden width d_ff (the mixture of experts' shared experts use it too).
template <class T>
std::unique_ptr<ChannelMixer<T>> make_dense_mlp(const ModelConfig& m, int d_ff, int max_batch,
                                                const Declarer& d, const TpShard& tp);
template <class T>
std::unique_ptr<ChannelMixer<T>> make_moe(const ModelConfig& m, int max_batch, const Declarer& d,
                                          const ReplicaSum& replicas = {},
                                          const ExpertParallel<T>& experts = {});

// RWKV-6's channel mix of hidden width d_ff (rwkv_channel_mix.cpp).
template <class T>
std::unique_ptr<ChannelMixer<T>> make_rwkv_channel_mix(const ModelConfig& m, int max_batch,
                                                       const Declarer& d, const TpShard& tp);

ModuleCost channel_mixer_cost(const ModelConfig& m);
ModuleCost rwkv_channel_mix_cost(const ModelConfig& m);
ModuleCost dense_mlp_cost(const ModelConfig& m, int d_ff);
ModuleCost moe_cost(const ModelConfig& m);

}  // namespace ellm
