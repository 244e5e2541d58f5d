#include "layers/crossentropy.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/vmath.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::layers {
namespace {
// fn(n) for the rows [0, N) of V logits each, on the rank's threads: rows are independent, so
// the results do not depend on the thread count (the loss total is summed afterwards, in order).
template <class Fn>
void each_row(int N, int V, Fn fn) {
  parallel_items(N, std::int64_t(V) * 16, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t n = b; n < e; n++) fn(int(n));
  });
}
}  // namespace

template <class T>
double crossentropy_forward(T* logits, T* losses, const int* targets, int N, int V, int v0, T* rows,
                            const RowReduce<T>& max, const RowReduce<T>& sum) {
  const PhaseScope phase(Phase::loss);
  T* row_max = rows;       // (N)
  T* row_sums = rows + N;  // (N,2): Σ exp(logit − max), and the target's logit (0 off-shard)
  each_row(N, V, [&](int n) {
    const T* p = logits + std::size_t(n) * V;
    row_max[n] = *std::max_element(p, p + V);  // subtract the max: exp never overflows
  });
  if (max) max(row_max, N);
  each_row(N, V, [&](int n) {
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
  });
  if (sum) sum(row_sums, 2 * N);
  each_row(N, V, [&](int n) {
    const T s = row_sums[2 * n];
    T* p = logits + std::size_t(n) * V;
    for (int v = 0; v < V; v++) p[v] /= s;
    // finite even if p underflows
    losses[n] = targets[n] < 0 ? T(0) : std::log(s) - (row_sums[2 * n + 1] - row_max[n]);
  });
  double total = 0.0;
  for (int n = 0; n < N; n++) total += losses[n];
  return total;
}

template <class T>
void crossentropy_backward(T* probs, const int* targets, int N, int V, int v0, double divisor) {
  const PhaseScope phase(Phase::loss);
  const T dloss = T(1) / T(divisor);
  each_row(N, V, [&](int n) {
    T* d = probs + std::size_t(n) * V;
    if (targets[n] < 0) return std::fill(d, d + V, T(0));
    const int local_target = targets[n] - v0;
    if (local_target >= 0 && local_target < V) d[local_target] -= T(1);
    for (int v = 0; v < V; v++) d[v] *= dloss;
  });
}

#define ELLM_INSTANTIATE(T)                                                          \
  template double crossentropy_forward<T>(T*, T*, const int*, int, int, int, T*,     \
                                          const RowReduce<T>&, const RowReduce<T>&); \
  template void crossentropy_backward<T>(T*, const int*, int, int, int, double);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
