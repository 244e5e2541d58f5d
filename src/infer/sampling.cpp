#include "infer/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ellm {

int TokenSampler::next(const float* logits, int V) {
  const int top = int(std::max_element(logits, logits + V) - logits);
  if (cfg_.temperature <= 0) return top;
  probs_.resize(std::size_t(V));
  double sum = 0;
  for (int v = 0; v < V; v++) sum += (probs_[v] = std::exp((double(logits[v]) - logits[top]) / cfg_.temperature));
  order_.resize(std::size_t(V));
  std::iota(order_.begin(), order_.end(), 0);
  // Most probable first; ties by id, so the nucleus does not depend on the sort's stability.
  std::sort(order_.begin(), order_.end(), [&](int a, int b) { return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b); });
  int kept = 0;
  double mass = 0;
  while (kept < V && (kept == 0 || mass < cfg_.top_p * sum)) mass += probs_[order_[kept++]];
  double u = rng_.uniform() * mass;
  for (int i = 0; i < kept; i++) {
    u -= probs_[order_[i]];
    if (u < 0) return order_[i];
  }
  return order_[kept - 1];  // u landed on the rounding slack at the end
}

}  // namespace ellm
