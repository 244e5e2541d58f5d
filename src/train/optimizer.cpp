#include "train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "kernels/vmath.hpp"

#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm {

double learning_rate(const TrainingConfig& t, int step) {
  if (step < t.warmup_steps) return t.lr * double(step + 1) / t.warmup_steps;
  const int decay_steps = t.steps - t.warmup_steps;
  if (decay_steps <= 1) return t.lr;
  const double progress = double(step - t.warmup_steps) / (decay_steps - 1);  // 0 → 1
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

double global_norm(const float* grads, std::size_t n) {
  const PhaseScope phase(Phase::optimizer);
  // Fixed chunks, each summed on its own and the chunks added in order: the same result on any
  // thread count. The chunk sums live in a buffer kept across calls (no allocation in a step).
  constexpr std::size_t kChunk = std::size_t(1) << 16;
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  thread_local std::vector<double> chunk_sum;
  if (chunk_sum.size() < chunks) chunk_sum.resize(chunks);
  double* sums = chunk_sum.data();
  parallel_items(std::int64_t(chunks), std::int64_t(kChunk), [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; c++) {
      const float* g = grads + std::size_t(c) * kChunk;
      sums[c] = kernels::lane_sum(std::min(kChunk, n - std::size_t(c) * kChunk),
                                  [g](std::size_t i) { return double(g[i]) * g[i]; });
    }
  });
  double ss = 0.0;
  for (std::size_t c = 0; c < chunks; c++) ss += sums[c];
  return std::sqrt(ss);
}

double clip_scale(double norm, double max_norm) {
  return (max_norm > 0.0 && norm > max_norm) ? max_norm / norm : 1.0;
}

double shared_square_sum(const ArenaLayout& layout, const float* grads,
                         const std::vector<ArenaRange>& ranges, int tp_size) {
  double squares = 0.0;
  for_each_piece(layout, ranges, [&](const TensorInfo& t, std::size_t b, std::size_t e) {
    const double n = global_norm(grads + b, e - b);
    squares += n * n / t.copies(tp_size);
  });
  return squares;
}

std::size_t AdamW::moment_elems(const ArenaLayout& layout, const std::vector<ArenaRange>& owned) {
  std::size_t n = 0;  // frozen tensors get no moments, even inside an owned range
  for_each_piece(layout, owned, [&](const TensorInfo& t, std::size_t b, std::size_t e) {
    if (t.trainable) n += e - b;
  });
  return n;
}

AdamW::AdamW(const ArenaLayout& layout, const TrainingConfig& t, std::vector<ArenaRange> owned)
    : layout_(layout), owned_(std::move(owned)), beta1_(t.beta1), beta2_(t.beta2),
      eps_(t.adam_eps), weight_decay_(t.weight_decay) {
  const std::size_t n = moment_elems(layout_, owned_);
  m_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

namespace {
// The constants of one AdamW update of a tensor.
struct AdamWCoefficients {
  float b1, b2, grad_scale, c1, c2, eps, lr, wd;
};

// m, v and the parameters of elements [0, n) in one pass. The coefficients arrive by value, as
// locals: read through a captured reference they could alias the stored floats, and the loop
// would stay scalar (it did: a third of the optimizer phase).
void adamw_update(float* p, const float* g, float* m, float* v, std::int64_t n, AdamWCoefficients k) {
  for (std::int64_t i = 0; i < n; i++) {
    const float gi = g[i] * k.grad_scale;
    m[i] = k.b1 * m[i] + (1.0f - k.b1) * gi;
    v[i] = k.b2 * v[i] + (1.0f - k.b2) * gi * gi;
    p[i] -= k.lr * ((m[i] * k.c1) / (std::sqrt(v[i] * k.c2) + k.eps) + k.wd * p[i]);
  }
}
}  // namespace

void AdamW::step(float* params, const float* grads, double lr, double grad_scale) {
  const PhaseScope phase(Phase::optimizer);
  t_ += 1;
  AdamWCoefficients k{float(beta1_), float(beta2_), float(grad_scale),
                      float(1.0 / (1.0 - std::pow(beta1_, t_))),  // bias corrections
                      float(1.0 / (1.0 - std::pow(beta2_, t_))), float(eps_), 0.0f, 0.0f};
  for_each_moment([&](const TensorInfo& t, std::size_t b, std::size_t e, float* m, float* v) {
    k.wd = t.decay ? float(weight_decay_) : 0.0f;
    k.lr = float(lr * t.lr_scale);  // LoRA+: B's group (decay included, as PEFT's)
    float* p = params + b;
    const float* g = grads + b;
    // Elements are independent: the rank's threads share them (same result on any thread count).
    parallel_items(std::int64_t(e - b), 16, [&](std::int64_t i0, std::int64_t i1) {
      adamw_update(p + i0, g + i0, m + i0, v + i0, i1 - i0, k);
    });
  });
}

}  // namespace ellm
