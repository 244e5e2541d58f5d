// AdamW (Loshchilov & Hutter) over the flat parameter arena, the learning-rate schedule
// (linear warm-up, cosine decay to min_lr) and global-norm gradient clipping.
#pragma once
#include <cstddef>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/layout.hpp"

namespace ellm {

// lr at step s (0-based): linear warm-up over warmup_steps, then cosine from lr to min_lr at the last step.
double learning_rate(const TrainingConfig& t, int step);

// L2 norm of the whole gradient arena, accumulated in double.
double global_norm(const float* grads, std::size_t n);
// The factor that brings the norm down to max_norm (1 when it is already below, or max_norm == 0).
double clip_scale(double norm, double max_norm);

class AdamW {
 public:
  AdamW(const ArenaLayout& layout, const TrainingConfig& t);
  // params -= lr · (m̂ / (√v̂ + eps) + wd · params) with g = grads · grad_scale; wd only where
  // the tensor's `decay` flag is set.
  void step(float* params, const float* grads, double lr, double grad_scale);
  std::size_t state_bytes() const { return (m_.size() + v_.size()) * sizeof(float); }

 private:
  const ArenaLayout& layout_;
  double beta1_, beta2_, eps_, weight_decay_;
  std::vector<float> m_, v_;
  int t_ = 0;
};

}  // namespace ellm
