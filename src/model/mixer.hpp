// The attention sublayer of a block ("token mixer"), pluggable per variant: it maps the block's
// normalised input x (B,T,C) to y (B,T,width), which the block's output projection (C, width)
// brings back to C. Each variant lives in its own file (mixer_gqa.cpp, mixer_mla.cpp,
// mixer_nsa.cpp), declares its tensors in the model's arenas, and keeps forward and backward
// side by side. docs/ATTENTION.md describes the variants, their FLOPs and KV-cache sizes.
#pragma once
#include <cstddef>
#include <memory>

#include "efficientllm/config.hpp"
#include "model/layout.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

// The model's arenas; a mixer's offsets index into them.
template <class T>
struct Arenas {
  T* params;
  T* grads;
  T* acts;
  T* scratch;  // backward workspace, shared by all layers (one layer runs at a time)
  T* p(std::size_t off) const { return off == kAbsent ? nullptr : params + off; }
  T* g(std::size_t off) const { return off == kAbsent ? nullptr : grads + off; }
  T* a(std::size_t off) const { return acts + off; }
};

template <class T>
class AttentionMixer {
 public:
  virtual ~AttentionMixer() = default;
  virtual int width() const = 0;                       // columns of y: heads × value head size
  virtual std::size_t scratch_elems(int B) const = 0;  // what backward needs of Arenas::scratch
  // y (B,T,width) ← x (B,T,C); saves what backward needs in the activation arena.
  virtual void forward(const Arenas<T>& a, const T* x, T* y, int B) = 0;
  // dx (B,T,C) overwritten with ∂L/∂x from dy (B,T,width); parameter gradients accumulate.
  // y is forward's output.
  virtual void backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx, int B) = 0;
};

// Declares layer `layer`'s attention tensors in `params` and `acts` (at the point where the
// block is being laid out, so a block stays contiguous) and returns the mixer that computes them.
// Under tensor parallelism (tp.shard.size > 1) only GQA is supported: each rank owns H/tp query
// heads and their kv heads (job validation refuses other variants).
template <class T>
std::unique_ptr<AttentionMixer<T>> make_mixer(const ModelConfig& m, int layer, int max_batch,
                                              ArenaLayout& params, ArenaLayout& acts,
                                              const TensorParallel<T>& tp);

// Per-variant factories (one per mixer_*.cpp).
template <class T>
std::unique_ptr<AttentionMixer<T>> make_gqa_mixer(const ModelConfig&, int, int, ArenaLayout&,
                                                  ArenaLayout&, const TensorParallel<T>&);
template <class T>
std::unique_ptr<AttentionMixer<T>> make_mla_mixer(const ModelConfig&, int, int, ArenaLayout&,
                                                  ArenaLayout&);
template <class T>
std::unique_ptr<AttentionMixer<T>> make_nsa_mixer(const ModelConfig&, int, int, ArenaLayout&,
                                                  ArenaLayout&);

// What one layer's attention costs, for the metrics (conventions in src/metrics/flops.hpp).
struct AttentionCost {
  double matmul_weights = 0;             // weights in matrix products, output projection excluded
  double attention_flops_per_token = 0;  // score and value products, averaged over positions 0…T−1
  double kv_cache_elems_per_token =
      0;  // what inference must keep per past token (docs/ATTENTION.md)
};
AttentionCost attention_cost(const ModelConfig& m);
AttentionCost gqa_cost(const ModelConfig& m);
AttentionCost mla_cost(const ModelConfig& m);
AttentionCost nsa_cost(const ModelConfig& m);

// Mean over query positions t = 0…T−1 of the keys a query sees when it sees at most `window`
// (0: all earlier keys and itself). Shared by the variants' FLOP counts.
double mean_visible_keys(int T, int window);

}  // namespace ellm
