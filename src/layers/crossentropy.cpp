#include "layers/crossentropy.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/vmath.hpp"

namespace ellm::layers {

template <class T>
double crossentropy_forward(T* logits, T* losses, const int* targets, int N, int V, int v0, T* rows,
                            const RowReduce<T>& max, const RowReduce<T>& sum) {
  T* row_max = rows;       // (N)
  T* row_sums = rows + N;  // (N,2): Σ exp(logit − max), and the target's logit (0 off-shard)
  for (int n = 0; n < N; n++) {
    const T* p = logits + std::size_t(n) * V;
    row_max[n] = *std::max_element(p, p + V);  // subtract the max: exp never overflows
  }
  if (max) max(row_max, N);
  for (int n = 0; n < N; n++) {
    T* p = logits + std::size_t(n) * V;
    const int local_target = targets[n] - v0;
    const bool mine = local_target >= 0 && local_target < V;
    row_sums[2 * n + 1] = mine ? p[local_target] : T(0);
    T s = 0;
    for (int v = 0; v < V; v++) {
      p[v] = kernels::vexp(p[v] - row_max[n]);
      s += p[v];
    }
    row_sums[2 * n] = s;
  }
  if (sum) sum(row_sums, 2 * N);
  double total = 0.0;
  for (int n = 0; n < N; n++) {
    const T s = row_sums[2 * n];
    T* p = logits + std::size_t(n) * V;
    for (int v = 0; v < V; v++) p[v] /= s;
    // finite even if p underflows
    losses[n] = targets[n] < 0 ? T(0) : std::log(s) - (row_sums[2 * n + 1] - row_max[n]);
    total += losses[n];
  }
  return total;
}

template <class T>
void crossentropy_backward(T* probs, const int* targets, int N, int V, int v0, double divisor) {
  const T dloss = T(1) / T(divisor);
  for (int n = 0; n < N; n++) {
    T* d = probs + std::size_t(n) * V;
    if (targets[n] < 0) {
      std::fill(d, d + V, T(0));
      continue;
    }
    const int local_target = targets[n] - v0;
    if (local_target >= 0 && local_target < V) d[local_target] -= T(1);
    for (int v = 0; v < V; v++) d[v] *= dloss;
  }
}

#define ELLM_INSTANTIATE(T)                                                          \
  template double crossentropy_forward<T>(T*, T*, const int*, int, int, int, T*,     \
                                          const RowReduce<T>&, const RowReduce<T>&); \
  template void crossentropy_backward<T>(T*, const int*, int, int, int, double);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
