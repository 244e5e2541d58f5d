// The token mixer of a block: the sublayer that moves information between positions (attention,
// Mamba's selective scan; RWKV's recurrence will implement the same interface). It maps the
// block's normalised input x (B,T,C) to its output (B,T,C), of which each tensor-parallel rank
// computes a partial sum that the block adds up (model/block.cpp). Each variant lives in its own
// file (mixer_gqa.cpp, mixer_mla.cpp, mixer_nsa.cpp, mixer_mamba.cpp), declares its tensors in the model's
// arenas, and keeps forward and backward side by side. docs/ARCHITECTURE.md describes the
// contract, including the one-chunk-at-a-time call with a cache that inference will add.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "efficientllm/config.hpp"
#include "model/module.hpp"
#include "model/parallel_linear.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

template <class T>
class TokenMixer {
 public:
  virtual ~TokenMixer() = default;
  // What forward and backward need of Arenas::scratch (nothing in it survives between calls).
  virtual std::size_t scratch_elems(int B) const = 0;
  // out (B,T,C) ← this rank's partial sum of the mixer's output for x (B,T,C); saves what
  // backward needs in the activation arena.
  virtual void forward(const Arenas<T>& a, const T* x, T* out, int B) = 0;
  // dx (B,T,C) overwritten with this rank's part of ∂L/∂x, from dout (B,T,C), the gradient of
  // the whole output; parameter gradients accumulate. Runs after forward on the same x.
  virtual void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) = 0;

  // Cached decoding (inference). A cache for B sequences of up to max_len tokens: exactly the
  // ModuleCost's cache_elems_per_token per past token (a ring of `window` tokens for a sliding
  // window) or its state_elems_per_sequence. Throws std::invalid_argument for a mixer that
  // cannot decode with a cache.
  virtual std::unique_ptr<MixerCache> make_cache(int B, int max_len) const = 0;
  // out (B,c,C) ← this rank's partial sum of the output for tokens pos0…pos0+c−1 of each
  // sequence, x (B,c,C); `cache` holds tokens 0…pos0−1 and takes these. Equals rows pos0… of
  // forward on the whole sequence (positions are absolute). Saves nothing for backward.
  virtual void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c, int pos0,
                             MixerCache& cache) = 0;
  // f(adapter) for each of its linears' fine-tuning adapters (model/adapter.hpp).
  virtual void for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& /*f*/) const {}
};

// Attention mixers: a variant's core maps x (N,C) to per-head outputs y (N, width), width =
// this rank's heads × value head size; the row-parallel output projection (C, width) that every
// variant shares brings y back to C.
template <class T>
class AttentionMixer : public TokenMixer<T> {
 public:
  std::size_t scratch_elems(int B) const final { return rows(B) * width_ + core_scratch_elems(B); }
  void forward(const Arenas<T>& a, const T* x, T* out, int B) final {
    core_forward(a, x, a.a(y_), B);                 // (N,W)
    out_.forward(a, a.a(y_), out, int(rows(B)));    // (N,C) partial
  }
  void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) final {
    T* dy = a.scratch;  // (N,W)
    out_.backward(a, dy, dout, a.a(y_), int(rows(B)));
    core_backward(a.with_scratch(a.scratch + rows(B) * width_), x, a.a(y_), dy, dx, B);
  }
  void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c, int pos0,
                     MixerCache& cache) final {
    core_forward_chunk(a, x, a.a(y_), B, c, pos0, cache);  // (B·c,W)
    out_.forward(a, a.a(y_), out, B * c);                  // (B·c,C) partial
  }
  void for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& f) const final {
    core_for_each_adapter(f);
    f(out_.adapter);
  }

 protected:
  // Called last by the variant's constructor, so the projection follows the variant's tensors.
  void declare_output(const Declarer& d, const ModelConfig& m, int width, int max_batch,
                      const TpShard& tp) {
    width_ = width;
    seq_len_ = m.seq_len;
    out_.declare(d, "out", width * tp.size, m.d_model, residual_init(m), m.linear_bias(), tp);
    out_.adapt(d, m.finetune, "o", width * tp.size, tp, max_batch * m.seq_len);
    y_ = d.buffer("y", {max_batch * m.seq_len, width});
  }
  virtual std::size_t core_scratch_elems(int B) const = 0;
  // y (N,W) ← x (N,C)
  virtual void core_forward(const Arenas<T>& a, const T* x, T* y, int B) = 0;
  // dx (N,C) overwritten from dy (N,W); y is core_forward's output.
  virtual void core_backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx,
                             int B) = 0;
  // y (B·c,W) ← x (B·c,C) for tokens pos0…pos0+c−1, through the cache (TokenMixer::forward_chunk).
  virtual void core_forward_chunk(const Arenas<T>& a, const T* x, T* y, int B, int c, int pos0,
                                  MixerCache& cache) = 0;
  virtual void core_for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& /*f*/) const {}

 private:
  std::size_t rows(int B) const { return std::size_t(B) * seq_len_; }
  int width_ = 0, seq_len_ = 0;
  std::size_t y_ = 0;
  RowParallelLinear<T> out_;
};

// Declares layer `d.layer`'s token-mixer tensors (where the block is being laid out, so a block
// stays contiguous) and returns the mixer that computes them. `m` is the layer's config.
template <class T>
std::unique_ptr<TokenMixer<T>> make_token_mixer(const ModelConfig& m, int max_batch,
                                                const Declarer& d, const TensorParallel<T>& tp);

// Per-variant factories (one per mixer_*.cpp).
// RWKV-6's time mix (mixer_rwkv6.cpp): not attention, it implements TokenMixer directly.
template <class T>
std::unique_ptr<TokenMixer<T>> make_rwkv6_mixer(const ModelConfig& m, int max_batch,
                                                const Declarer& d, const TensorParallel<T>& tp);
template <class T>
std::unique_ptr<TokenMixer<T>> make_gqa_mixer(const ModelConfig&, int, const Declarer&,
                                              const TensorParallel<T>&);
template <class T>
std::unique_ptr<TokenMixer<T>> make_mla_mixer(const ModelConfig&, int, const Declarer&,
                                              const TensorParallel<T>&);
template <class T>
std::unique_ptr<TokenMixer<T>> make_nsa_mixer(const ModelConfig&, int, const Declarer&,
                                              const TensorParallel<T>&);

// Mamba-1's selective state-space mixer (mixer_mamba.cpp, docs/ATTENTION_FREE.md).
template <class T>
std::unique_ptr<TokenMixer<T>> make_mamba_mixer(const ModelConfig&, int, const Declarer&,
                                                const TensorParallel<T>&);

// What one layer's token mixer costs, output projection included (conventions in
// src/metrics/flops.hpp).
ModuleCost token_mixer_cost(const ModelConfig& m);
// The attention variants' cores, output projection excluded: matmul weights of q, k, v (and
// latents, gates, φ); other FLOPs = score and value products averaged over positions 0…T−1;
// cache = what inference must keep per past token (docs/ATTENTION.md).
ModuleCost gqa_cost(const ModelConfig& m);
ModuleCost mla_cost(const ModelConfig& m);
ModuleCost nsa_cost(const ModelConfig& m);
// Mamba, its projections included: no cache, a fixed state per sequence (conv + scan state).
ModuleCost mamba_cost(const ModelConfig& m);
// RWKV-6's time mix, output projection included; its state is per sequence (no cache).
ModuleCost rwkv6_cost(const ModelConfig& m);

// Mean over query positions t = 0…T−1 of the keys a query sees when it sees at most `window`
// (0: all earlier keys and itself). Shared by the variants' FLOP counts.
double mean_visible_keys(int T, int window);

}  // namespace ellm
