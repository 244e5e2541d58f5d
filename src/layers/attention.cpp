#include "layers/attention.hpp"

#include <cstddef>
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"

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
  return {base + size_t(h) * s.hs, base + size_t(s.H + kv) * s.hs,
          base + size_t(s.H + s.Hkv + kv) * s.hs};
}

// Causal mask inside a (query tile i0, key tile j0) pair: query row i0+r sees keys ≤ i0+r.
inline int visible_keys(int i0, int r, int j0, int bc) { return std::clamp(i0 + r - j0 + 1, 0, bc); }

// Per-thread scratch reused across calls, so the hot path does not allocate.
template <class T>
std::vector<T>& scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[4];
  if (buffers[slot].size() < n) buffers[slot].resize(n);
  return buffers[slot];
}

}  // namespace

template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionShape& s, int tile) {
  const int R = s.row(), C = s.out_row(), hs = s.hs;
  const T scale = T(1) / std::sqrt(T(hs));
  T* S = scratch<T>(0, size_t(tile) * tile).data();  // (tile,tile) scores, then probabilities
  T* acc = scratch<T>(1, size_t(tile) * hs).data();  // (tile,hs) unnormalised output
  T* m = scratch<T>(2, tile).data();                 // running row max
  T* l = scratch<T>(3, tile).data();                 // running row sum
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      T* o = out + size_t(b) * s.T * C + size_t(h) * hs;
      T* L = lse + (size_t(b) * s.H + h) * s.T;
      for (int i0 = 0; i0 < s.T; i0 += tile) {
        const int br = std::min(tile, s.T - i0);
        std::fill(m, m + br, T(-1e30));
        std::fill(l, l + br, T(0));
        std::fill(acc, acc + size_t(br) * hs, T(0));
        for (int j0 = 0; j0 < i0 + br; j0 += tile) {
          const int bc = std::min(tile, s.T - j0);
          gemm<T>(false, true, br, bc, hs, scale, hv.q + size_t(i0) * R, R, hv.k + size_t(j0) * R,
                  R, T(0), S, bc);
          for (int r = 0; r < br; r++) {
            T* srow = S + size_t(r) * bc;
            const int nv = visible_keys(i0, r, j0, bc);
            T mx = m[r];
            for (int c = 0; c < nv; c++) mx = std::max(mx, srow[c]);
            const T correction = kernels::vexp(m[r] - mx);
            T sum = 0;
            for (int c = 0; c < nv; c++) {
              srow[c] = kernels::vexp(srow[c] - mx);
              sum += srow[c];
            }
            std::fill(srow + nv, srow + bc, T(0));
            l[r] = l[r] * correction + sum;
            m[r] = mx;
            T* arow = acc + size_t(r) * hs;
            for (int d = 0; d < hs; d++) arow[d] *= correction;
          }
          gemm<T>(false, false, br, hs, bc, T(1), S, bc, hv.v + size_t(j0) * R, R, T(1), acc, hs);
        }
        for (int r = 0; r < br; r++) {
          const T inv = T(1) / l[r];
          T* orow = o + size_t(i0 + r) * C;
          for (int d = 0; d < hs; d++) orow[d] = acc[size_t(r) * hs + d] * inv;
          L[i0 + r] = m[r] + std::log(l[r]);
        }
      }
    }
  }
}

template <class T>
void attention_backward(T* dqkv, const T* dout, const T* out, const T* lse, const T* qkv,
                        const AttentionShape& s, int tile) {
  const int R = s.row(), C = s.out_row(), hs = s.hs;
  const T scale = T(1) / std::sqrt(T(hs));
  T* P = scratch<T>(0, size_t(tile) * tile).data();   // (tile,tile) probabilities
  T* dS = scratch<T>(1, size_t(tile) * tile).data();  // (tile,tile) dP, then dS
  T* D = scratch<T>(2, s.T).data();                   // rowsum(dout ⊙ out) per query
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      const HeadView<T> dv = head_view(dqkv, s, b, h);
      const T* dO = dout + size_t(b) * s.T * C + size_t(h) * hs;
      const T* O = out + size_t(b) * s.T * C + size_t(h) * hs;
      const T* L = lse + (size_t(b) * s.H + h) * s.T;
      for (int t = 0; t < s.T; t++) {
        T acc = 0;
        for (int d = 0; d < hs; d++) acc += dO[size_t(t) * C + d] * O[size_t(t) * C + d];
        D[t] = acc;
      }
      for (int j0 = 0; j0 < s.T; j0 += tile) {
        const int bc = std::min(tile, s.T - j0);
        for (int i0 = j0; i0 < s.T; i0 += tile) {  // earlier query tiles cannot see key tile j0
          const int br = std::min(tile, s.T - i0);
          gemm<T>(false, true, br, bc, hs, scale, hv.q + size_t(i0) * R, R, hv.k + size_t(j0) * R,
                  R, T(0), P, bc);
          for (int r = 0; r < br; r++) {
            T* prow = P + size_t(r) * bc;
            const int nv = visible_keys(i0, r, j0, bc);
            for (int c = 0; c < nv; c++) prow[c] = kernels::vexp(prow[c] - L[i0 + r]);
            std::fill(prow + nv, prow + bc, T(0));
          }
          // dV_j += Pᵀ dO_i ;  dP = dO_i V_jᵀ
          gemm<T>(true, false, bc, hs, br, T(1), P, bc, dO + size_t(i0) * C, C, T(1),
                  dv.v + size_t(j0) * R, R);
          gemm<T>(false, true, br, bc, hs, T(1), dO + size_t(i0) * C, C, hv.v + size_t(j0) * R, R,
                  T(0), dS, bc);
          for (int r = 0; r < br; r++) {  // dS = P ⊙ (dP − D)
            for (int c = 0; c < bc; c++) {
              dS[size_t(r) * bc + c] = P[size_t(r) * bc + c] * (dS[size_t(r) * bc + c] - D[i0 + r]);
            }
          }
          // dQ_i += scale · dS K_j ;  dK_j += scale · dSᵀ Q_i
          gemm<T>(false, false, br, hs, bc, scale, dS, bc, hv.k + size_t(j0) * R, R, T(1),
                  dv.q + size_t(i0) * R, R);
          gemm<T>(true, false, bc, hs, br, scale, dS, bc, hv.q + size_t(i0) * R, R, T(1),
                  dv.k + size_t(j0) * R, R);
        }
      }
    }
  }
}

template <class T>
void attention_forward_naive(T* out, const T* qkv, const AttentionShape& s) {
  const int C = s.out_row();
  const double scale = 1.0 / std::sqrt(double(s.hs));
  std::vector<double> p(s.T);
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      for (int t = 0; t < s.T; t++) {
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; j++) {
          double dot = 0;
          for (int d = 0; d < s.hs; d++) dot += double(hv.q[size_t(t) * s.row() + d]) * hv.k[size_t(j) * s.row() + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j <= t; j++) sum += (p[j] = std::exp(p[j] - mx));
        T* o = out + (size_t(b) * s.T + t) * C + size_t(h) * s.hs;
        for (int d = 0; d < s.hs; d++) {
          double acc = 0;
          for (int j = 0; j <= t; j++) acc += p[j] / sum * hv.v[size_t(j) * s.row() + d];
          o[d] = T(acc);
        }
      }
    }
  }
}

template <class T>
void attention_backward_naive(T* dqkv, const T* dout, const T* qkv, const AttentionShape& s) {
  const int C = s.out_row(), R = s.row();
  const double scale = 1.0 / std::sqrt(double(s.hs));
  std::vector<double> p(s.T), dp(s.T);
  for (int b = 0; b < s.B; b++) {
    for (int h = 0; h < s.H; h++) {
      const HeadView<const T> hv = head_view(qkv, s, b, h);
      const HeadView<T> dv = head_view(dqkv, s, b, h);
      for (int t = 0; t < s.T; t++) {
        const T* dO = dout + (size_t(b) * s.T + t) * C + size_t(h) * s.hs;
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; j++) {
          double dot = 0;
          for (int d = 0; d < s.hs; d++) dot += double(hv.q[size_t(t) * R + d]) * hv.k[size_t(j) * R + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j <= t; j++) sum += (p[j] = std::exp(p[j] - mx));
        double pdp = 0;  // Σ_j p_j · dp_j, the softmax Jacobian's rank-one term
        for (int j = 0; j <= t; j++) {
          p[j] /= sum;
          double dot = 0;
          for (int d = 0; d < s.hs; d++) dot += double(dO[d]) * hv.v[size_t(j) * R + d];
          dp[j] = dot;
          pdp += p[j] * dot;
        }
        for (int j = 0; j <= t; j++) {
          const double ds = p[j] * (dp[j] - pdp) * scale;
          for (int d = 0; d < s.hs; d++) {
            dv.v[size_t(j) * R + d] += T(p[j] * dO[d]);
            dv.q[size_t(t) * R + d] += T(ds * hv.k[size_t(j) * R + d]);
            dv.k[size_t(j) * R + d] += T(ds * hv.q[size_t(t) * R + d]);
          }
        }
      }
    }
  }
}

#define ELLM_INSTANTIATE(T)                                                                       \
  template void attention_forward<T>(T*, T*, const T*, const AttentionShape&, int);               \
  template void attention_backward<T>(T*, const T*, const T*, const T*, const T*,                 \
                                      const AttentionShape&, int);                                \
  template void attention_forward_naive<T>(T*, const T*, const AttentionShape&);                  \
  template void attention_backward_naive<T>(T*, const T*, const T*, const AttentionShape&);
ELLM_INSTANTIATE(float)
ELLM_INSTANTIATE(double)
#undef ELLM_INSTANTIATE

}  // namespace ellm::layers
