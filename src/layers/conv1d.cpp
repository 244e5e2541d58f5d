#include "layers/conv1d.hpp"

#include <algorithm>
#include <cstddef>

namespace ellm::layers {

// Loops run over channels innermost: each tap reads one contiguous row of x.
template <class T>
void conv1d_causal_forward(T* out, const T* x, int ldx, const T* w, const T* bias, int B, int Tn,
                           int D, int K) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) {
      T* o = out + (std::size_t(b) * Tn + t) * D;  // (D)
      std::copy(bias, bias + D, o);
      for (int k = std::max(0, K - 1 - t); k < K; k++) {
        const T* xs = x + (std::size_t(b) * Tn + t - (K - 1) + k) * ldx;  // (D)
        for (int d = 0; d < D; d++) o[d] += w[std::size_t(d) * K + k] * xs[d];
      }
    }
  }
}

template <class T>
void conv1d_causal_backward(T* dx, int lddx, T* dw, T* dbias, const T* dout, const T* x, int ldx,
                            const T* w, int B, int Tn, int D, int K) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) std::fill_n(dx + (std::size_t(b) * Tn + t) * lddx, D, T(0));
    for (int t = 0; t < Tn; t++) {
      const T* g = dout + (std::size_t(b) * Tn + t) * D;  // (D)
      for (int d = 0; d < D; d++) dbias[d] += g[d];
      for (int k = std::max(0, K - 1 - t); k < K; k++) {
        const std::size_t src = std::size_t(b) * Tn + t - (K - 1) + k;
        const T* xs = x + src * ldx;
        T* dxs = dx + src * lddx;
        for (int d = 0; d < D; d++) {
          dxs[d] += w[std::size_t(d) * K + k] * g[d];
          dw[std::size_t(d) * K + k] += g[d] * xs[d];
        }
      }
    }
  }
}

#define ELLM_INSTANTIATE(T)                                                                  \
  template void conv1d_causal_forward<T>(T*, const T*, int, const T*, const T*, int, int, int, \
                                         int);                                               \
  template void conv1d_causal_backward<T>(T*, int, T*, T*, const T*, const T*, int, const T*, \
                                          int, int, int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
