#include "layers/sparse_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kernels/vmath.hpp"
#include "util/phases.hpp"

namespace ellm::layers {
namespace {

// Where one (sequence b, query t, head h) reads and writes, as offsets into the buffers.
struct Rows {
  std::size_t q;         // its query row in q (and dq)
  std::size_t o;         // its output row in out (and dout)
  std::size_t kv;        // key row 0 of its kv head in k and v (and dk, dv)
  std::size_t lse;       // its log-sum-exp
  const KeyRange* keys;  // (R) its kv group's key ranges
};

Rows rows(const SparseShape& s, const KeyRange* ranges, int b, int t, int h) {
  const int g = h / (s.H / s.Hkv);
  const std::size_t bt = std::size_t(b) * s.T + t;
  return {bt * s.q_row + std::size_t(h) * s.hs, bt * s.out_row + std::size_t(h) * s.hs,
          std::size_t(b) * s.Tk * s.kv_row + std::size_t(g) * s.hs,
          (std::size_t(b) * s.H + h) * s.T + t, s.ranges_of(ranges, b, t, g)};
}

// Eight running sums: without -ffast-math the compiler may not reorder one sum, but it does
// vectorise eight independent ones.
template <class T>
T dot(const T* a, const T* b, int n) {
  T lanes[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; l++) lanes[l] += a[i + l] * b[i + l];
  }
  T acc = 0;
  for (; i < n; i++) acc += a[i] * b[i];
  for (T lane : lanes) acc += lane;
  return acc;
}

// y (n) += a · x (n); one output per loop keeps the compiler's aliasing checks few enough to vectorise.
template <class T>
void axpy(T* y, T a, const T* x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// Calls f(j) for every key row j of one query's ranges, in order.
template <class F>
void for_each_key(const Rows& r, const SparseShape& s, F&& f) {
  for (int i = 0; i < s.R; i++) {
    for (int j = r.keys[i].lo; j < r.keys[i].hi; j++) f(j);
  }
}

// Offset of key row j of the query's kv head.
inline std::size_t key_row(const Rows& r, const SparseShape& s, int j) {
  return r.kv + std::size_t(j) * s.kv_row;
}

template <class T>
T scale_of(const SparseShape& s) {
  return T(1) / std::sqrt(T(s.hs));
}

}  // namespace

template <class T>
void sparse_attention_forward(T* out, T* lse, const T* q, const T* k, const T* v,
                              const KeyRange* ranges, const SparseShape& s) {
  const PhaseScope phase(Phase::attention);
  const T scale = scale_of<T>(s);
  thread_local std::vector<T> scores;  // one query's scores, in key order (capacity kept across calls)
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.T; t++) {
      for (int h = 0; h < s.H; h++) {
        const Rows r = rows(s, ranges, b, t, h);
        T* o = out + r.o;  // (hs)
        scores.clear();
        T mx = -std::numeric_limits<T>::infinity();
        for_each_key(r, s, [&](int j) {
          scores.push_back(dot(q + r.q, k + key_row(r, s, j), s.hs) * scale);
          mx = std::max(mx, scores.back());
        });
        std::fill(o, o + s.hs, T(0));
        T sum = 0;
        std::size_t i = 0;
        for_each_key(r, s, [&](int j) {
          const T p = kernels::vexp(scores[i++] - mx);
          sum += p;
          axpy(o, p, v + key_row(r, s, j), s.hs);
        });
        const T inv = scores.empty() ? T(0) : T(1) / sum;
        for (int d = 0; d < s.hs; d++) o[d] *= inv;
        lse[r.lse] = scores.empty() ? mx : mx + std::log(sum);  // log of an empty sum is −∞
      }
    }
  }
}

template <class T>
void sparse_attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* out, const T* lse,
                               const T* q, const T* k, const T* v, const KeyRange* ranges,
                               const SparseShape& s) {
  const PhaseScope phase(Phase::attention);
  const T scale = scale_of<T>(s);
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.T; t++) {
      for (int h = 0; h < s.H; h++) {
        const Rows r = rows(s, ranges, b, t, h);
        const T* qi = q + r.q;     // (hs)
        const T* dO = dout + r.o;  // (hs)
        T* dqi = dq + r.q;         // (hs)
        const T D = dot(dO, out + r.o, s.hs);  // Σ_j p_j dp_j: the softmax Jacobian's rank-one term
        for_each_key(r, s, [&](int j) {
          const std::size_t kj = key_row(r, s, j);
          const T p = kernels::vexp(dot(qi, k + kj, s.hs) * scale - lse[r.lse]);
          const T ds = p * (dot(dO, v + kj, s.hs) - D) * scale;
          axpy(dv + kj, p, dO, s.hs);
          axpy(dqi, ds, k + kj, s.hs);
          axpy(dk + kj, ds, qi, s.hs);
        });
      }
    }
  }
}

template <class T>
void sparse_attention_add_probabilities(T* p, const T* lse, const T* q, const T* k,
                                        const KeyRange* ranges, const SparseShape& s, int b, int t,
                                        int h) {
  const T scale = scale_of<T>(s);
  const Rows r = rows(s, ranges, b, t, h);
  for_each_key(r, s, [&](int j) {
    p[j] += kernels::vexp(dot(q + r.q, k + key_row(r, s, j), s.hs) * scale - lse[r.lse]);
  });
}

#define ELLM_INSTANTIATE(T)                                                                     \
  template void sparse_attention_forward<T>(T*, T*, const T*, const T*, const T*,               \
                                            const KeyRange*, const SparseShape&);               \
  template void sparse_attention_backward<T>(T*, T*, T*, const T*, const T*, const T*,          \
                                             const T*, const T*, const T*, const KeyRange*,     \
                                             const SparseShape&);                               \
  template void sparse_attention_add_probabilities<T>(T*, const T*, const T*, const T*,         \
                                                      const KeyRange*, const SparseShape&, int, \
                                                      int, int);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
