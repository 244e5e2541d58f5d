// Low-rank adapters on a linear layer (docs/PEFT.md; the semantics of Hugging Face PEFT): the
// frozen base weight W₀ (out, in) of a target gains trainable factors A (r, in) and B (out, r),
//   LoRA / LoRA+ / RSLoRA / PiSSA:  y = x·W₀ᵀ + b + s·(x·Aᵀ)·Bᵀ        s = α/r (RSLoRA: α/√r)
//   DoRA:  y = g ⊙ (x·W₀ᵀ + s·(x·Aᵀ)·Bᵀ) + b,  g = m / ‖W₀ + s·B·A‖ per output row,
// the norm detached from the gradient (DoRA paper §4.3, PEFT) and m trainable, starting at ‖W₀‖.
// A starts uniform in ±1/√in (PEFT's kaiming_uniform(a=√5)), B at zero, so the adapted model
// starts as the base; PiSSA instead starts A, B from W₀'s top-r singular triplets and leaves the
// residual W₀ − s·B·A in the base (init_from_base).
//
// One adapter serves one linear and holds a segment per adapted range of its output rows (GQA's
// fused projection has q, k and v; SwiGLU's first projection gate and up). Tensor parallelism:
// on a column-parallel linear B (and m) are sharded by output rows like the segment's rows and A
// is whole on every rank (each rank's dA is the part from its rows: declared partial, summed over
// the tensor-parallel group); on a row-parallel linear A is sharded by input columns like W₀ and B
// is whole (its dB is the part from this rank's columns: partial). No collective runs here.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/module.hpp"
#include "model/tensor_parallel.hpp"

namespace ellm {

template <class T>
class LinearAdapter {
 public:
  // An adapted range of a column-parallel linear's output rows.
  struct Target {
    std::string name;     // the target module's name ("q", "gate", ...): FinetuneConfig::targets
    std::size_t base;     // the frozen weight tensor the rows belong to
    int base_row0;        // their first local row in it
    int out0;             // their first local column of the linear's output
    int full_rows;        // the range's rows at tp = 1
    Shard rows;           // this rank's part of them (B and m are sharded so)
  };

  // Declares the adapters of a column-parallel linear of `in` inputs and `out` local outputs, one
  // per target that the job's finetune section names (none: the adapter is empty).
  void declare_column(const Declarer& d, const FinetuneConfig& f, int in, int out,
                      const std::vector<Target>& targets, int max_rows);
  // Declares the adapter of a row-parallel linear W₀ (out, in_full) at `base`, split by columns.
  void declare_row(const Declarer& d, const FinetuneConfig& f, const std::string& name,
                   std::size_t base, int in_full, int out, const TpShard& tp, int max_rows);
  bool empty() const { return segments_.empty(); }
  int rank() const { return r_; }
  double scale() const { return s_; }

  // y (N,out) holds x·W₀ᵀ + b (b the bias this rank adds, or nullptr); adds the adapters.
  void forward(const Arenas<T>& a, const T* x, const T* b, T* y, int N) const;
  // The gradient the base's backward must see: dy itself, or with DoRA g ⊙ dy on its segments
  // (then also dm += Σₙ dy ⊙ u / ‖·‖). Call once per backward, before the base's.
  const T* output_grad(const Arenas<T>& a, const T* dy, int N) const;
  // From dy' (output_grad's): dB, dA accumulate; dx (N,in) += the adapters' part (nullptr: skip).
  void backward(const Arenas<T>& a, T* dx, const T* dy, const T* x, int N) const;

  // Once the base weights are in place (initialised, imported or loaded): DoRA's m ← ‖W₀‖ per
  // row; PiSSA's A, B ← W₀'s top-r singular triplets and W₀ ← W₀ − s·B·A. Nothing for LoRA.
  void init_from_base(const Arenas<T>& a) const;
  // W₀ ← the adapted weight (sign +1: merge; LoRA family W₀ + s·B·A), or back (−1: unmerge).
  // DoRA merges as m/‖W₀ + s·B·A‖ ⊙ (W₀ + s·B·A) and unmerges by its inverse (the norms
  // kept from the merge). While merged, forward adds nothing: the base is the adapted layer.
  void merge(const Arenas<T>& a, int sign) const;
  // Gradient checks of DoRA: forward reuses the norms of the last forward instead of recomputing
  // them, which makes the detached norm a constant of the loss that finite differences see.
  void hold_norms(bool hold) const { held_ = hold; }

 private:
  struct Segment {
    std::size_t base;
    int base_row0, out0, rows;
    std::size_t A, B, mag = kAbsent;            // (r, in), (rows, r), (rows) DoRA only
    std::size_t h, dh, u = kAbsent, norm = kAbsent;  // (N,r), (N,r); DoRA: (N,rows), (rows)
  };
  // ‖W₀ + s·B·A‖ of each of the segment's rows into `norm` (rows).
  void row_norms(const Arenas<T>& a, const Segment& g, T* norm) const;
  const T* base_row(const Arenas<T>& a, const Segment& g, int row) const {
    return a.p(g.base) + std::size_t(g.base_row0 + row) * in_;
  }
  // The method's settings for a linear of `in` (local) inputs and `out` outputs; returns B's
  // learning-rate factor (LoRA+).
  double configure(const FinetuneConfig& f, int in, int out);
  void declare_buffers(const Declarer& d, Segment& g, const std::string& name, int max_rows);

  std::vector<Segment> segments_;
  FinetuneMethod method_ = FinetuneMethod::LoRA;
  int in_ = 0, out_ = 0, r_ = 0, pissa_iters_ = 0;
  double s_ = 1;
  std::size_t dy_scaled_ = kAbsent;  // DoRA: (N,out) the gradient the base sees
  mutable bool merged_ = false;      // the base holds the adapted weight: forward adds nothing
  mutable bool held_ = false;        // hold_norms
};

}  // namespace ellm
