#include "layers/crossentropy.hpp"

#include <cstddef>
#include <algorithm>
#include <cmath>

namespace ellm::layers {

template <class T>
double crossentropy_forward(T* logits, T* losses, const int* targets, int N, int V) {
  double total = 0.0;
  for (int n = 0; n < N; n++) {
    T* p = logits + size_t(n) * V;
    const T maxv = *std::max_element(p, p + V);  // subtract the max: exp never overflows
    const T target_logit = p[targets[n]];
    T sum = 0;
    for (int v = 0; v < V; v++) {
      p[v] = std::exp(p[v] - maxv);
      sum += p[v];
    }
    const T inv = T(1) / sum;
    for (int v = 0; v < V; v++) p[v] *= inv;
    losses[n] = std::log(sum) - (target_logit - maxv);  // log-sum-exp: finite even if p underflows
    total += losses[n];
  }
  return total / N;
}

template <class T>
void crossentropy_backward(T* probs, const int* targets, int N, int V) {
  const T dloss = T(1) / T(N);
  for (int n = 0; n < N; n++) {
    T* d = probs + size_t(n) * V;
    d[targets[n]] -= T(1);
    for (int v = 0; v < V; v++) d[v] *= dloss;
  }
}

#define ELLM_INSTANTIATE(T)                                                \
  template double crossentropy_forward<T>(T*, T*, const int*, int, int);  \
  template void crossentropy_backward<T>(T*, const int*, int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
