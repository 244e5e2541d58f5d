// AdamW (Loshchilov & Hutter) over the flat parameter arena, the learning-rate schedule
// (linear warm-up, cosine decay to min_lr) and global-norm gradient clipping.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm {

// lr at step s (0-based): linear warm-up over warmup_steps, then cosine from lr to min_lr at the last step.
double learning_rate(const TrainingConfig& t, int step);

// L2 norm of n gradients, accumulated in double.
double global_norm(const float* grads, std::size_t n);
// Σ g² over the parts of the arena in `ranges`, each tensor's squares divided by the number of
// tensor-parallel ranks holding the same copy (tp_size for replicated tensors), so that summing
// over the tensor-parallel group (and, with ZeRO-1, the data-parallel one) counts every
// gradient of the model once.
double shared_square_sum(const ArenaLayout& layout, const float* grads,
                         const std::vector<ArenaRange>& ranges, int tp_size);
// The factor that brings the norm down to max_norm (1 when it is already below, or max_norm == 0).
double clip_scale(double norm, double max_norm);

class AdamW {
 public:
  // Updates the trainable tensors' parts of the arena in `owned` (GradientSync::owned: every
  // bucket, or a ZeRO-1 shard); its moments cover only those.
  AdamW(const ArenaLayout& layout, const TrainingConfig& t, std::vector<ArenaRange> owned);
  // The elements of each moment: the trainable tensors' parts in `owned` (frozen ones get none).
  static std::size_t moment_elems(const ArenaLayout& layout, const std::vector<ArenaRange>& owned);
  // params -= lr' · (m̂ / (√v̂ + eps) + wd · params) with g = grads · grad_scale; wd only where
  // the tensor's `decay` flag is set; lr' = lr × the tensor's lr_scale (LoRA+'s B).
  void step(float* params, const float* grads, double lr, double grad_scale);
  std::size_t state_bytes() const { return (m_.size() + v_.size()) * sizeof(float); }
  // Steps taken (the bias corrections' t); a resumed run sets it from its checkpoint.
  int steps_taken() const { return t_; }
  void set_steps_taken(int t) { t_ = t; }
  // f(tensor, begin, end, m, v) for each trainable owned piece [begin, end) of the arena, with
  // its first and second moments (end − begin floats each): for checkpoints.
  template <class F>
  void for_each_moment(F f);

 private:
  const ArenaLayout& layout_;
  std::vector<ArenaRange> owned_;
  double beta1_, beta2_, eps_, weight_decay_;
  std::vector<float> m_, v_;
  int t_ = 0;
};

// Calls f(tensor, begin, end) for each piece [begin, end) of the ranges that lies in one tensor.
template <class F>
void for_each_piece(const ArenaLayout& layout, const std::vector<ArenaRange>& ranges, F f) {
  for (const ArenaRange& r : ranges) {
    for (const TensorInfo& t : layout.tensors()) {
      const std::size_t b = std::max(r.begin, t.offset), e = std::min(r.end, t.offset + t.numel);
      if (b < e) f(t, b, e);
    }
  }
}

template <class F>
void AdamW::for_each_moment(F f) {
  std::size_t moment = 0;  // the same walk as step(): the owned trainable pieces, back to back
  for_each_piece(layout_, owned_, [&](const TensorInfo& t, std::size_t b, std::size_t e) {
    if (!t.trainable) return;
    f(t, b, e, m_.data() + moment, v_.data() + moment);
    moment += e - b;
  });
}

}  // namespace ellm
