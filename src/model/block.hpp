// One block of the stack: its wiring, a token mixer, a channel mixer and their norms, each chosen
// by the layer's config (ModelConfig::layer(l)), in the spirit of Megatron-Core's
// TransformerLayerSubmodules.
//   sequential (GPT-2, Llama):    h = x + mixer(ln1(x));  y = h + mlp(ln2(h))
//   parallel (GPT-J, NeoX, Pythia): y = x + mixer(ln1(x)) + mlp(ln2(x))
//   mixer only (Mamba):           y = x + mixer(ln1(x))
// Under tensor parallelism both mixers return partial sums; the block adds them up with one
// collective per branch (sequential) or one for both branches (parallel), and sums the partial
// input gradients of the column-parallel layers on the way back (model/residual_stream.hpp).
#pragma once
#include <memory>

#include "model/channel_mixer.hpp"
#include "model/norm_layer.hpp"
#include "model/residual_stream.hpp"
#include "model/token_mixer.hpp"

namespace ellm {

template <class T>
class Block {
 public:
  // Declares the block's tensors (norms, mixers) into d's arenas for micro-batches of up to
  // max_batch sequences. `m` is the layer's config.
  Block(const ModelConfig& m, int max_batch, const Declarer& d, const ResidualStream<T>& stream);

  // a(output()) (R,C) ← the block applied to x (R,C), this rank's rows of the stream.
  void forward(const Arenas<T>& a, const T* x, int B);
  // dres (R,C) holds ∂L/∂(output) and becomes ∂L/∂x; a.scratch has scratch_elems(B).
  void backward(const Arenas<T>& a, const T* x, T* dres, int B);
  std::size_t output() const { return out_; }

  // Cached decoding (inference, no sequence parallelism): the block's mixers' caches for B
  // sequences of up to max_len tokens, and a(output()) (B·c,C) ← the block applied to the chunk
  // x (B·c,C) of tokens pos0…pos0+c−1, through them.
  struct Cache {
    std::unique_ptr<MixerCache> mixer, mlp;
  };
  Cache make_cache(int B, int max_len) const;
  void forward_chunk(const Arenas<T>& a, const T* x, int B, int c, int pos0, Cache& cache);
  // The channel mixer's routing in the last forward (MoE), or nullptr.
  const RoutingStats* routing() const { return mlp_ ? mlp_->routing() : nullptr; }
  std::size_t scratch_elems(int B) const;
  // f(adapter) for each fine-tuning adapter of its mixers (model/adapter.hpp).
  void for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& f) const {
    mixer_->for_each_adapter(f);
    if (mlp_) mlp_->for_each_adapter(f);
  }

 private:
  void forward_sequential(const Arenas<T>& a, const T* x, int B);
  void forward_parallel(const Arenas<T>& a, const T* x, int B);
  void backward_sequential(const Arenas<T>& a, const T* x, T* dres, int B);
  void backward_parallel(const Arenas<T>& a, const T* x, T* dres, int B);
  struct Work;  // views into a.scratch
  Work work(const Arenas<T>& a, int B) const;

  Wiring wiring_;
  int C_, T_;
  const ResidualStream<T>& stream_;
  NormLayer<T> ln1_, ln2_;
  std::unique_ptr<TokenMixer<T>> mixer_;
  std::unique_ptr<ChannelMixer<T>> mlp_;  // nullptr: a mixer-only block (mlp "none")
  // activations: the norms' gathered (N,C) outputs under sequence parallelism (else the norms'
  // own), the residual after the token mixer (sequential), and the block's output (R,C)
  std::size_t ln1_full_, ln2_full_, mid_ = kAbsent, out_;
};

// What one block of this config costs (its mixers'; norms and residual adds are elementwise).
ModuleCost block_cost(const ModelConfig& m);

}  // namespace ellm
