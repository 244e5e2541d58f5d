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
// is whole (its dB is the part from this rank's columns: partial). Forward and backward run no
// collective; what spans the ranks (a row-parallel DoRA's row norms, PiSSA's SVD of the full W₀)
// goes through the TensorParallel the caller passes to refresh_norms, init_from_base and merge.
//
// Dropout (finetune.dropout = p > 0, training only: Arenas::dropout) is PEFT's: on the adapter's
// input alone, y = x·W₀ᵀ + b + s·(x̃·Aᵀ)·Bᵀ with x̃ = x ⊙ mask / (1 − p), each segment its own mask
// (a counter-based hash of the step's draw, the segment, the row's global sample and position
// and the input feature's full index: the same under every layout).
#pragma once
#include <cstddef>
#include <string>
#include <utility>
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
    int full_row0 = 0;    // their first row in the full (tp = 1) base weight
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
  // Collective over `tp` (every rank calls it): a row-parallel DoRA's row norms, PiSSA's full W₀.
  void init_from_base(const Arenas<T>& a, const TensorParallel<T>& tp) const;
  // W₀ ← the adapted weight (sign +1: merge; LoRA family W₀ + s·B·A), or back (−1: unmerge).
  // DoRA merges as m/‖W₀ + s·B·A‖ ⊙ (W₀ + s·B·A) and unmerges by its inverse (the norms
  // kept from the merge). While merged, forward adds nothing: the base is the adapted layer.
  // Collective over `tp` (a row-parallel DoRA's norms).
  void merge(const Arenas<T>& a, int sign, const TensorParallel<T>& tp) const;
  // DoRA on a row-parallel linear under tensor parallelism: the row norms the next forward uses,
  // summed over `tp` (every rank calls it before the forward; the model does). Forward computes
  // every other adapter's norms itself.
  void refresh_norms(const Arenas<T>& a, const TensorParallel<T>& tp) const;
  // Gradient checks of DoRA: forward reuses the norms of the last forward instead of recomputing
  // them, which makes the detached norm a constant of the loss that finite differences see.
  void hold_norms(bool hold) const { held_ = hold; }

 private:
  struct Segment {
    std::size_t base;
    int base_row0, out0, rows;
    std::size_t A, B, mag = kAbsent;            // (r, in), (rows, r), (rows) DoRA only
    std::size_t h, dh, u = kAbsent, norm = kAbsent;  // (N,r), (N,r); DoRA: (N,rows), (rows)
    std::size_t xd = kAbsent;  // dropout: (N,in) x̃, then in backward the masked part of dx
    std::uint64_t mask_key = 0;  // dropout: the segment's stream (of its A's name: layer and module)
    int full_rows = 0;             // the rows at tp = 1
    std::vector<std::pair<int, int>> row_ranges = {};  // column-parallel: this rank's of them (empty: all)
  };
  // x̃ (dropout on) into the segment's buffer, or x itself (off).
  const T* dropped_input(const Arenas<T>& a, const Segment& g, const T* x, int N) const;
  // The mask's row keys and each element's factor: 0 or 1/(1 − p).
  std::uint64_t mask_row(const DropoutDraw& d, const Segment& g, int n) const;
  T keep_factor(std::uint64_t row, int i) const;
  // ‖W₀ + s·B·A‖ of each of the segment's rows into `norm` (rows): over the whole row, so on a
  // row-parallel linear the squares of each rank's columns are summed over `tp`.
  void row_norms(const Arenas<T>& a, const Segment& g, T* norm, const TensorParallel<T>& tp) const;
  // `norm` (rows) holds this rank's squares of each row: the whole rows' norms.
  void squares_to_norms(T* norm, int rows, const TensorParallel<T>& tp) const;
  // PiSSA: the segment's full W₀ (full_rows, in_full), its top-r triplets (tp rank 0's, on every
  // rank), this rank's shards of A and B and its residual W₀ − s·B·A.
  void pissa_init(const Arenas<T>& a, const Segment& g, const TensorParallel<T>& tp) const;
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
  int in0_ = 0;  // the first input feature's full index (row-parallel: this rank's columns)
  int in_full_ = 0;            // the input features at tp = 1
  bool row_parallel_ = false;  // W₀ split by input columns: its rows span the tensor-parallel ranks
  bool tp_norms_ = false;      // DoRA on a row-parallel linear under tp: refresh_norms computes the norms
  double s_ = 1, dropout_ = 0;
  std::size_t dy_scaled_ = kAbsent;  // DoRA: (N,out) the gradient the base sees
  mutable bool merged_ = false;      // the base holds the adapted weight: forward adds nothing
  mutable bool held_ = false;        // hold_norms
};

}  // namespace ellm
