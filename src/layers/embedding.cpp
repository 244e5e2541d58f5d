#include "layers/embedding.hpp"

#include <cstddef>
namespace ellm::layers {

template <class T>
void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) {
      T* y = out + (size_t(b) * Tn + t) * C;
      const T* e = wte + size_t(tokens[b * Tn + t]) * C;
      for (int c = 0; c < C; c++) y[c] = e[c];
      if (wpe) {
        const T* p = wpe + size_t(t) * C;
        for (int c = 0; c < C; c++) y[c] += p[c];
      }
    }
  }
}

template <class T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn, int C) {
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < Tn; t++) {
      const T* dy = dout + (size_t(b) * Tn + t) * C;
      T* de = dwte + size_t(tokens[b * Tn + t]) * C;
      for (int c = 0; c < C; c++) de[c] += dy[c];
      if (dwpe) {
        T* dp = dwpe + size_t(t) * C;
        for (int c = 0; c < C; c++) dp[c] += dy[c];
      }
    }
  }
}

#define ELLM_INSTANTIATE(T)                                                                \
  template void embedding_forward<T>(T*, const int*, const T*, const T*, int, int, int);  \
  template void embedding_backward<T>(T*, T*, const T*, const int*, int, int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
