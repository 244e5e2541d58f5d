#include "layers/attention.hpp"

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::layers {
using kernels::gemm;

namespace {

// Pointers to one (batch, query head) slice of the packed buffers; rows are `row` apart.
template <class T>
struct HeadView {
  T* q;
  T* k;
  T* v;
};
template <class T>
HeadView<T> head_view(T* qkv, const AttentionShape& s, int b, int h) {
  T* base = qkv + size_t(b) * s.T * s.row();
  const int kv = h / (s.H / s.Hkv);
  return {base + size_t(h) * s.dk, base + size_t(s.H + kv) * s.dk,
          base + size_t(s.H + s.Hkv) * s.dk + size_t(kv) * s.dv};
}

// Keys of tile [j0, j0+bc) visible to query i: columns [lo, hi) of the tile (empty when lo ≥ hi).
struct Visible {
  int lo, hi;
};
inline Visible visible(const AttentionShape& s, int i, int j0, int bc) {
  return {std::clamp(s.first_key(i) - j0, 0, bc), std::clamp(i - j0 + 1, 0, bc)};
}

// Adds the ALiBi bias of head h to one score row; the penalty grows with distance i − j.
template <class T>
void add_alibi(T* srow, const AttentionShape& s, int h, int i, int j0, Visible v) {
  if (!s.alibi_slopes) return;
  const T slope = T(s.alibi_slopes[h]);
  for (int c = v.lo; c < v.hi; c++) srow[c] -= slope * T(i - (j0 + c));
}

// Zeroes a probability row outside the visible keys [v.lo, v.hi) (all of it when none is).
template <class T>
void zero_invisible(T* row, Visible v, int bc) {
  std::fill(row, row + std::min(v.lo, bc), T(0));
  std::fill(row + std::max(v.hi, v.lo), row + bc, T(0));
}

// S (br,bc) = scale · Q_i K_jᵀ for the query tile at i0 and the key tile at j0.
template <class T>
void score_tile(T* S, const HeadView<const T>& hv, const AttentionShape& s, T scale, int i0,
                int br, int j0, int bc) {
  const int R = s.row();
  gemm<T>(false, true, br, bc, s.dk, scale, hv.q + size_t(i0) * R, R, hv.k + size_t(j0) * R, R,
          T(0), S, bc);
}

// Per-thread scratch reused across calls, so the hot path does not allocate (decoding; the
// training kernels keep one workspace per piece, below).
template <class T>
std::vector<T>& scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[4];
  if (buffers[slot].size() < n) buffers[slot].resize(n);
  return buffers[slot];
}


// Elements of one piece's workspace (below) forward and backward.
inline size_t forward_workspace(const AttentionShape& s, int tile) { return size_t(tile) * (tile + s.dv + 2); }
inline size_t backward_workspace(const AttentionShape& s, int tile) { return size_t(2) * tile * tile + s.T; }

// One query tile [i0, i0 + tile) of one (batch, query head) of the forward: its rows of out's
// head slice and their log-sum-exps.
template <class T>
void forward_tile(T* out, T* lse, const T* qkv, const AttentionShape& s, int tile, int b, int h, int i0, T* work) {
  const int R = s.row(), C = s.out_row(), dk = s.dk, dv = s.dv;
  const T scale = T(1) / std::sqrt(T(dk));
  T* S = work;                           // (tile,tile) scores, then probabilities
  T* acc = S + size_t(tile) * tile;      // (tile,dv) unnormalised output
  T* m = acc + size_t(tile) * dv;        // (tile) running row max
  T* l = m + tile;                       // (tile) running row sum
  const HeadView<const T> hv = head_view(qkv, s, b, h);
  T* o = out + size_t(b) * s.T * C + size_t(h) * dv;
  T* L = lse + (size_t(b) * s.H + h) * s.T;
  const int br = std::min(tile, s.T - i0);
  std::fill(m, m + br, T(-1e30));
  std::fill(l, l + br, T(0));
  std::fill(acc, acc + size_t(br) * dv, T(0));
  // key tiles from the first key the tile's first query sees to its last query
  for (int j0 = s.first_key(i0) / tile * tile; j0 < i0 + br; j0 += tile) {
    const int bc = std::min(tile, s.T - j0);
    score_tile(S, hv, s, scale, i0, br, j0, bc);
    for (int r = 0; r < br; r++) {
      T* srow = S + size_t(r) * bc;
      const Visible v = visible(s, i0 + r, j0, bc);
      add_alibi(srow, s, h, i0 + r, j0, v);
      T mx = m[r];
      for (int c = v.lo; c < v.hi; c++) mx = std::max(mx, srow[c]);
      const T correction = kernels::vexp(m[r] - mx);
      T sum = 0;
      for (int c = v.lo; c < v.hi; c++) {
        srow[c] = kernels::vexp(srow[c] - mx);
        sum += srow[c];
      }
      zero_invisible(srow, v, bc);
      l[r] = l[r] * correction + sum;
      m[r] = mx;
      T* arow = acc + size_t(r) * dv;
      for (int d = 0; d < dv; d++) arow[d] *= correction;
    }
    gemm<T>(false, false, br, dv, bc, T(1), S, bc, hv.v + size_t(j0) * R, R, T(1), acc, dv);
  }
  for (int r = 0; r < br; r++) {
    const T inv = T(1) / l[r];
    T* orow = o + size_t(i0 + r) * C;
    for (int d = 0; d < dv; d++) orow[d] = acc[size_t(r) * dv + d] * inv;
    L[i0 + r] = m[r] + std::log(l[r]);
  }
}

// One (batch, kv head) of the backward: the query heads of its group in increasing order, each
// adding into the group's dK and dV — the order of the serial loop over heads, so the result is
// bit-identical whichever thread runs the group.
template <class T>
void backward_group(T* dqkv, const T* dout, const T* out, const T* lse, const T* qkv, const AttentionShape& s,
                    int tile, int b, int g, T* work) {
  const int R = s.row(), C = s.out_row(), dk = s.dk, dv = s.dv, group = s.H / s.Hkv;
  const T scale = T(1) / std::sqrt(T(dk));
  T* P = work;                          // (tile,tile) probabilities
  T* dS = P + size_t(tile) * tile;      // (tile,tile) dP, then dS
  T* D = dS + size_t(tile) * tile;      // (T) rowsum(dout ⊙ out) per query
  for (int h = g * group; h < (g + 1) * group; h++) {
    const HeadView<const T> hv = head_view(qkv, s, b, h);
    const HeadView<T> dh = head_view(dqkv, s, b, h);
    const T* dO = dout + size_t(b) * s.T * C + size_t(h) * dv;
    const T* O = out + size_t(b) * s.T * C + size_t(h) * dv;
    const T* L = lse + (size_t(b) * s.H + h) * s.T;
    for (int t = 0; t < s.T; t++) {
      T acc = 0;
      for (int d = 0; d < dv; d++) acc += dO[size_t(t) * C + d] * O[size_t(t) * C + d];
      D[t] = acc;
    }
    for (int j0 = 0; j0 < s.T; j0 += tile) {
      const int bc = std::min(tile, s.T - j0);
      // Earlier query tiles cannot see key tile j0; with a window, later ones stop seeing it.
      const int i_end = s.window > 0 ? std::min(s.T, j0 + bc - 1 + s.window) : s.T;
      for (int i0 = j0; i0 < i_end; i0 += tile) {
        const int br = std::min(tile, s.T - i0);
        score_tile(P, hv, s, scale, i0, br, j0, bc);
        for (int r = 0; r < br; r++) {
          T* prow = P + size_t(r) * bc;
          const Visible v = visible(s, i0 + r, j0, bc);
          add_alibi(prow, s, h, i0 + r, j0, v);
          for (int c = v.lo; c < v.hi; c++) prow[c] = kernels::vexp(prow[c] - L[i0 + r]);
          zero_invisible(prow, v, bc);
        }
        // dV_j += Pᵀ dO_i ;  dP = dO_i V_jᵀ
        gemm<T>(true, false, bc, dv, br, T(1), P, bc, dO + size_t(i0) * C, C, T(1), dh.v + size_t(j0) * R, R);
        gemm<T>(false, true, br, bc, dv, T(1), dO + size_t(i0) * C, C, hv.v + size_t(j0) * R, R, T(0), dS, bc);
        for (int r = 0; r < br; r++) {  // dS = P ⊙ (dP − D); the ALiBi bias is a constant
          for (int c = 0; c < bc; c++) {
            dS[size_t(r) * bc + c] = P[size_t(r) * bc + c] * (dS[size_t(r) * bc + c] - D[i0 + r]);
          }
        }
        // dQ_i += scale · dS K_j ;  dK_j += scale · dSᵀ Q_i
        gemm<T>(false, false, br, dk, bc, scale, dS, bc, hv.k + size_t(j0) * R, R, T(1), dh.q + size_t(i0) * R, R);
        gemm<T>(true, false, bc, dk, br, scale, dS, bc, hv.q + size_t(i0) * R, R, T(1), dh.k + size_t(j0) * R, R);
      }
    }
  }
}


// Both directions split their independent items — (batch, query head, query tile) forward,
// (batch, kv head) backward, which owns its group's dK and dV — into one piece per thread of the rank's pool
// (util/thread_pool.hpp); each piece has its own slot of one workspace the caller keeps (sized once:
// no allocation after the first step) and runs its own small GEMMs (unsplit: a GEMM issued inside a
// pool job runs on its caller, kernels/gemm.cpp). Every item computes exactly what the serial loop did: results are
// bit-identical for any thread count.
template <class T, class Fn>
void in_pieces(std::int64_t items, size_t workspace, Fn item) {
  const int pieces = int(std::min<std::int64_t>(rank_pool().threads(), items));
  thread_local std::vector<T> work;  // the caller's: pieces × workspace
  if (work.size() < size_t(pieces) * workspace) work.resize(size_t(pieces) * workspace);
  T* base = work.data();
  rank_pool().parallel_for(pieces, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; p++)
      for (std::int64_t i = items * p / pieces; i < items * (p + 1) / pieces; i++) item(i, base + size_t(p) * workspace);
  });
}

}  // namespace

template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionShape& s, int tile) {
  const PhaseScope phase(Phase::attention);
  const int tiles = (s.T + tile - 1) / tile;  // query tiles per (batch, head)
  in_pieces<T>(std::int64_t(s.B) * s.H * tiles, forward_workspace(s, tile), [&](std::int64_t item, T* work) {
    const std::int64_t bh = item / tiles;
    forward_tile(out, lse, qkv, s, tile, int(bh / s.H), int(bh % s.H), int(item % tiles) * tile, work);
  });
}

template <class T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* lse, const T* qkv,
                        const AttentionShape& s, int tile) {
  const PhaseScope phase(Phase::attention);
  in_pieces<T>(std::int64_t(s.B) * s.Hkv, backward_workspace(s, tile), [&](std::int64_t bg, T* work) {
    backward_group(dqkv, dout, out, lse, qkv, s, tile, int(bg / s.Hkv), int(bg % s.Hkv), work);
  });
}

namespace {

// Softmax probabilities of query t of head h over keys first_key(t) … t, into p; the reference
// for both directions.
template <class T>
void naive_probabilities(const HeadView<const T>& hv, const AttentionShape& s, int h, int t,
                         std::vector<double>& p) {
  const int R = s.row();
  const double scale = 1.0 / std::sqrt(double(s.dk));
  double mx = -1e300, sum = 0;
  for (int j = s.first_key(t); j <= t; j++) {
    double dot = 0;
    for (int d = 0; d < s.dk; d++) dot += double(hv.q[size_t(t) * R + d]) * hv.k[size_t(j) * R + d];
    p[j] = dot * scale - (s.alibi_slopes ? s.alibi_slopes[h] * (t - j) : 0.0);
    mx = std::max(mx, p[j]);
  }
  for (int j = s.first_key(t); j <= t; j++) sum += (p[j] = std::exp(p[j] - mx));
  for (int j = s.first_key(t); j <= t; j++) p[j] /= sum;
}

}  // namespace

template <class T>
void attention_forward_naive(T* out, const T* qkv, const AttentionShape& s) {
  const int C = s.out_row(), R = s.row();
  std::vector<double> p(s.T);
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      for (int t = 0; t < s.T; t++) {
        naive_probabilities(hv, s, h, t, p);
        T* o = out + (size_t(b) * s.T + t) * C + size_t(h) * s.dv;
        for (int d = 0; d < s.dv; d++) {
          double acc = 0;
          for (int j = s.first_key(t); j <= t; j++) acc += p[j] * hv.v[size_t(j) * R + d];
          o[d] = T(acc);
        }
      }
    }
  }
}

template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* qkv, const AttentionShape& s) {
  const int C = s.out_row(), R = s.row();
  const double scale = 1.0 / std::sqrt(double(s.dk));
  std::vector<double> p(s.T), dp(s.T);
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      const HeadView<T> dh = head_view(dqkv, s, b, h);
      for (int t = 0; t < s.T; t++) {
        const T* dO = dout + (size_t(b) * s.T + t) * C + size_t(h) * s.dv;
        naive_probabilities(hv, s, h, t, p);
        double pdp = 0;  // Σ_j p_j · dp_j, the softmax Jacobian's rank-one term
        for (int j = s.first_key(t); j <= t; j++) {
          double dot = 0;
          for (int d = 0; d < s.dv; d++) dot += double(dO[d]) * hv.v[size_t(j) * R + d];
          dp[j] = dot;
          pdp += p[j] * dot;
        }
        for (int j = s.first_key(t); j <= t; j++) {
          const double ds = p[j] * (dp[j] - pdp) * scale;
          for (int d = 0; d < s.dv; d++) dh.v[size_t(j) * R + d] += T(p[j] * dO[d]);
          for (int d = 0; d < s.dk; d++) {
            dh.q[size_t(t) * R + d] += T(ds * hv.k[size_t(j) * R + d]);
            dh.k[size_t(j) * R + d] += T(ds * hv.q[size_t(t) * R + d]);
          }
        }
      }
    }
  }
}

void alibi_slopes(int H, double* slopes) {
  int pow2 = 1;
  while (pow2 * 2 <= H) pow2 *= 2;
  for (int h = 0; h < pow2; h++) slopes[h] = std::pow(2.0, -8.0 / pow2 * (h + 1));
  // Non-power-of-two H: the remaining heads take every other slope of the next power of two.
  for (int h = pow2; h < H; h++) slopes[h] = std::pow(2.0, -8.0 / (2 * pow2) * (2 * (h - pow2) + 1));
}

namespace {
// a·b over n elements in kDotLanes partial sums: one running sum is a chain of dependent adds
// that no compiler may reorder (a scalar loop), fixed lanes vectorise; the result depends on n
// alone, not on the CPU's vector width.
template <class T>
T dot_in_lanes(const T* a, const T* b, int n) {
  constexpr int kDotLanes = 16;
  T lane[kDotLanes] = {};
  int i = 0;
  for (; i + kDotLanes <= n; i += kDotLanes)
    for (int j = 0; j < kDotLanes; j++) lane[j] += a[i + j] * b[i + j];
  T sum = 0;
  for (; i < n; i++) sum += a[i] * b[i];
  for (T x : lane) sum += x;
  return sum;
}
}  // namespace

// The heads are independent: they split over the rank's pool (each thread its own score row), with
// the same result on any thread count.
template <class T>
void attention_decode(T* out, const T* q, const T* cache, int ld, int cap, int v_offset, int p,
                      T scale, const AttentionShape& s) {
  const int first = s.first_key(p), n = p - first + 1, group = s.H / s.Hkv;
  parallel_items(s.H, std::int64_t(n) * (s.dk + s.dv), [&](std::int64_t h0, std::int64_t h1) {
    T* score = scratch<T>(0, size_t(n)).data();  // (n) one head's scores, then weights
    for (int h = int(h0); h < int(h1); h++) {
      const int g = h / group;
      const T* qh = q + size_t(h) * s.dk;
      T top = -std::numeric_limits<T>::infinity();
      for (int j = first; j <= p; j++) {
        const T* k = cache + size_t(j % cap) * ld + size_t(g) * s.dk;
        T dot = dot_in_lanes(qh, k, s.dk) * scale;
        if (s.alibi_slopes) dot -= T(s.alibi_slopes[h]) * T(p - j);
        top = std::max(top, score[j - first] = dot);
      }
      T sum = 0;
      for (int j = 0; j < n; j++) sum += (score[j] = std::exp(score[j] - top));
      T* o = out + size_t(h) * s.dv;
      std::fill(o, o + s.dv, T(0));
      for (int j = first; j <= p; j++) {
        const T w = score[j - first] / sum;
        const T* v = cache + size_t(j % cap) * ld + v_offset + size_t(g) * s.dv;
        for (int i = 0; i < s.dv; i++) o[i] += w * v[i];
      }
    }
  });
}

#define ELLM_INSTANTIATE(T)                                                                       \
  template void attention_forward<T>(T*, T*, const T*, const AttentionShape&, int);               \
  template void attention_backward<T>(T*, const T*, const T*, const T*, const T*,                 \
                                      const AttentionShape&, int);                                \
  template void attention_forward_naive<T>(T*, const T*, const AttentionShape&);                  \
  template void attention_backward_naive<T>(T*, const T*, const T*, const AttentionShape&);       \
  template void attention_decode<T>(T*, const T*, const T*, int, int, int, int, T,                \
                                    const AttentionShape&);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
