#include "layers/rope.hpp"

#include <cstddef>
#include <cmath>
#include <vector>

namespace ellm::layers {
namespace {

// Rotates the first n_heads heads of every row by +angle (sign = 1) or -angle (sign = -1).
template <class T>
void rotate(T* x, int B, int Tn, int row, int n_heads, int hs, int rot, double base, int sign,
            int pos0) {
  const int half = rot / 2;
  std::vector<T> cos_t(half), sin_t(half);
  for (int t = 0; t < Tn; t++) {
    for (int i = 0; i < half; i++) {
      const double angle = double(pos0 + t) * std::pow(base, -2.0 * i / rot);
      cos_t[i] = T(std::cos(angle));
      sin_t[i] = T(sign * std::sin(angle));
    }
    for (int b = 0; b < B; b++) {
      T* r = x + (size_t(b) * Tn + t) * row;
      for (int head = 0; head < n_heads; head++) {
        T* v = r + size_t(head) * hs;
        for (int i = 0; i < half; i++) {
          const T x1 = v[i], x2 = v[i + half];
          v[i] = x1 * cos_t[i] - x2 * sin_t[i];
          v[i + half] = x1 * sin_t[i] + x2 * cos_t[i];
        }
      }
    }
  }
}

}  // namespace

template <class T>
void rope_forward(T* x, int B, int Tn, int row, int n_heads, int hs, int rot, double base,
                  int pos0) {
  rotate(x, B, Tn, row, n_heads, hs, rot, base, +1, pos0);
}

template <class T>
void rope_backward(T* dx, int B, int Tn, int row, int n_heads, int hs, int rot, double base) {
  rotate(dx, B, Tn, row, n_heads, hs, rot, base, -1, 0);
}

#define ELLM_INSTANTIATE(T)                                                  \
  template void rope_forward<T>(T*, int, int, int, int, int, int, double, int);   \
  template void rope_backward<T>(T*, int, int, int, int, int, int, double);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
