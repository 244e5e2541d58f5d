#include "layers/rope.hpp"

#include <algorithm>
#include <cstddef>
#include <cmath>
#include <vector>

#include "util/phases.hpp"

namespace ellm::layers {
namespace {

// cos and sin of position p's angles p · base^(−2i/rot), i < rot/2, for positions [0, count):
// built once per thread and shape and extended when a longer sequence comes, so a step (and a
// decoding step at a growing position) rebuilds no table.
template <class T>
struct RopeTable {
  int rot = 0, count = 0;
  double base = 0;
  std::vector<T> cos, sin;  // (count, rot/2)

  void ensure(int positions, int rotary, double theta) {
    if (rotary == rot && theta == base && positions <= count) return;
    if (rotary != rot || theta != base) count = 0;
    rot = rotary, base = theta;
    const int half = rot / 2, grown = std::max(positions, 2 * count);
    cos.resize(std::size_t(grown) * half);
    sin.resize(std::size_t(grown) * half);
    for (int p = count; p < grown; p++) {
      for (int i = 0; i < half; i++) {
        const double angle = double(p) * std::pow(base, -2.0 * i / rot);
        cos[std::size_t(p) * half + i] = T(std::cos(angle));
        sin[std::size_t(p) * half + i] = T(std::sin(angle));
      }
    }
    count = grown;
  }
};

// Rotates the first n_heads heads of every row by +angle (sign = 1) or -angle (sign = -1).
template <class T>
void rotate(T* x, int B, int Tn, int row, int n_heads, int hs, int rot, double base, int sign,
            int pos0) {
  const int half = rot / 2;
  thread_local RopeTable<T> table;
  table.ensure(pos0 + Tn, rot, base);
  for (int t = 0; t < Tn; t++) {
    const T* cos_t = table.cos.data() + std::size_t(pos0 + t) * half;
    const T* sin_t = table.sin.data() + std::size_t(pos0 + t) * half;
    for (int b = 0; b < B; b++) {
      T* r = x + (size_t(b) * Tn + t) * row;
      for (int head = 0; head < n_heads; head++) {
        T* v = r + size_t(head) * hs;
        for (int i = 0; i < half; i++) {
          const T x1 = v[i], x2 = v[i + half], s = sign > 0 ? sin_t[i] : -sin_t[i];
          v[i] = x1 * cos_t[i] - x2 * s;
          v[i + half] = x1 * s + x2 * cos_t[i];
        }
      }
    }
  }
}

}  // namespace

template <class T>
void rope_forward(T* x, int B, int Tn, int row, int n_heads, int hs, int rot, double base,
                  int pos0) {
  const PhaseScope phase(Phase::elementwise);
  rotate(x, B, Tn, row, n_heads, hs, rot, base, +1, pos0);
}

template <class T>
void rope_backward(T* dx, int B, int Tn, int row, int n_heads, int hs, int rot, double base) {
  const PhaseScope phase(Phase::elementwise);
  rotate(dx, B, Tn, row, n_heads, hs, rot, base, -1, 0);
}

#define ELLM_INSTANTIATE(T)                                                  \
  template void rope_forward<T>(T*, int, int, int, int, int, int, double, int);   \
  template void rope_backward<T>(T*, int, int, int, int, int, int, double);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
