#include "model/adapter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/gemm.hpp"
#include "kernels/svd.hpp"

namespace ellm {
using kernels::gemm;

namespace {
int local_rows(int full_rows, const Shard& s) {
  if (s.dim < 0) return full_rows;
  int rows = 0;
  for (const auto& [b, e] : s.ranges) rows += e - b;
  return rows;
}
}  // namespace

template <class T>
double LinearAdapter<T>::configure(const FinetuneConfig& f, int in, int out) {
  method_ = f.method;
  in_ = in;
  out_ = out;
  r_ = f.rank;
  s_ = f.scale();
  pissa_iters_ = f.pissa_svd_iters;
  return f.method == FinetuneMethod::LoRAPlus ? f.lora_plus_ratio : 1.0;  // B's learning-rate factor
}

template <class T>
void LinearAdapter<T>::declare_buffers(const Declarer& d, Segment& g, const std::string& name,
                                       int max_rows) {
  g.h = d.buffer(name + ".lora_h", {max_rows, r_});
  g.dh = d.buffer(name + ".lora_dh", {max_rows, r_});
  if (method_ != FinetuneMethod::DoRA) return;
  g.u = d.buffer(name + ".dora_u", {max_rows, g.rows});
  g.norm = d.buffer(name + ".dora_norm", {g.rows});
}

template <class T>
void LinearAdapter<T>::declare_column(const Declarer& d, const FinetuneConfig& f, int in, int out,
                                      const std::vector<Target>& targets, int max_rows) {
  if (!f.adapters()) return;
  const double b_lr = configure(f, in, out);
  for (const Target& t : targets) {
    if (!f.targets(t.name)) continue;
    Segment g{t.base, t.base_row0, t.out0, local_rows(t.full_rows, t.rows), 0, 0, kAbsent, 0, 0};
    const Shard rows{t.rows.dim, t.rows.ranges, 1};  // B (full_rows, r) and m by the same rows
    const bool split = t.rows.dim >= 0;
    g.A = d.param(weight(t.name + ".lora_A", {r_, in}, Init::uniform(1 / std::sqrt(double(in))))
                      .partial(split)
                      .adapter_of_base());
    g.B = d.param(weight(t.name + ".lora_B", {t.full_rows, r_}, Init::zeros()).sharded(rows).adapter_of_base(b_lr));
    if (method_ == FinetuneMethod::DoRA)
      g.mag = d.param(gain(t.name + ".lora_magnitude", {t.full_rows}).sharded(rows).adapter_of_base());
    declare_buffers(d, g, t.name, max_rows);
    segments_.push_back(g);
  }
  if (method_ == FinetuneMethod::DoRA && !segments_.empty())
    dy_scaled_ = d.buffer("dora_dy", {max_rows, out});
}

template <class T>
void LinearAdapter<T>::declare_row(const Declarer& d, const FinetuneConfig& f,
                                   const std::string& name, std::size_t base, int in_full, int out,
                                   const TpShard& tp, int max_rows) {
  if (!f.adapters() || !f.targets(name)) return;
  const double b_lr = configure(f, in_full / tp.size, out);
  Segment g{base, 0, 0, out, 0, 0, kAbsent, 0, 0};
  g.A = d.param(weight(name + ".lora_A", {r_, in_full}, Init::uniform(1 / std::sqrt(double(in_full))))
                    .sharded(tp.along(1, {{0, in_full}}))
                    .adapter_of_base());
  g.B = d.param(weight(name + ".lora_B", {out, r_}, Init::zeros()).partial(tp.size > 1).adapter_of_base(b_lr));
  if (method_ == FinetuneMethod::DoRA)
    g.mag = d.param(gain(name + ".lora_magnitude", {out}).partial(tp.size > 1).adapter_of_base());
  declare_buffers(d, g, name, max_rows);
  segments_.push_back(g);
  if (method_ == FinetuneMethod::DoRA) dy_scaled_ = d.buffer("dora_dy", {max_rows, out});
}

template <class T>
void LinearAdapter<T>::row_norms(const Arenas<T>& a, const Segment& g, T* norm) const {
  const T* A = a.p(g.A);
  const T* B = a.p(g.B);
  std::vector<T> row(in_);
  for (int j = 0; j < g.rows; j++) {
    const T* w = base_row(a, g, j);
    std::copy(w, w + in_, row.begin());
    for (int k = 0; k < r_; k++) {
      const T c = T(s_) * B[std::size_t(j) * r_ + k];
      const T* ak = A + std::size_t(k) * in_;
      for (int i = 0; i < in_; i++) row[i] += c * ak[i];
    }
    T sq = 0;
    for (int i = 0; i < in_; i++) sq += row[i] * row[i];
    norm[j] = std::sqrt(sq);
  }
}

template <class T>
void LinearAdapter<T>::forward(const Arenas<T>& a, const T* x, const T* b, T* y, int N) const {
  if (merged_) return;
  for (const Segment& g : segments_) {
    T* h = a.a(g.h);
    gemm<T>(false, true, N, r_, in_, T(1), x, in_, a.p(g.A), in_, T(0), h, r_);  // (N,r)
    if (g.mag == kAbsent) {  // y[:, seg] += s·h·Bᵀ
      gemm<T>(false, true, N, g.rows, r_, T(s_), h, r_, a.p(g.B), r_, T(1), y + g.out0, out_);
      continue;
    }
    // DoRA: u = x·W₀ᵀ + s·h·Bᵀ (the bias taken out), y = m/‖W₀ + s·B·A‖ ⊙ u + b
    T* u = a.a(g.u);
    T* norm = a.a(g.norm);
    for (int n = 0; n < N; n++) {
      const T* yr = y + std::size_t(n) * out_ + g.out0;
      T* ur = u + std::size_t(n) * g.rows;
      for (int j = 0; j < g.rows; j++) ur[j] = yr[j] - (b ? b[g.out0 + j] : T(0));
    }
    gemm<T>(false, true, N, g.rows, r_, T(s_), h, r_, a.p(g.B), r_, T(1), u, g.rows);
    if (!held_) row_norms(a, g, norm);
    const T* m = a.p(g.mag);
    for (int n = 0; n < N; n++) {
      T* yr = y + std::size_t(n) * out_ + g.out0;
      const T* ur = u + std::size_t(n) * g.rows;
      for (int j = 0; j < g.rows; j++) yr[j] = m[j] / norm[j] * ur[j] + (b ? b[g.out0 + j] : T(0));
    }
  }
}

template <class T>
const T* LinearAdapter<T>::output_grad(const Arenas<T>& a, const T* dy, int N) const {
  if (dy_scaled_ == kAbsent) return dy;
  T* dys = a.a(dy_scaled_);
  std::copy(dy, dy + std::size_t(N) * out_, dys);
  for (const Segment& g : segments_) {
    const T* m = a.p(g.mag);
    const T* norm = a.a(g.norm);
    const T* u = a.a(g.u);
    T* dm = a.g(g.mag);
    for (int n = 0; n < N; n++) {
      const T* dyr = dy + std::size_t(n) * out_ + g.out0;
      T* dsr = dys + std::size_t(n) * out_ + g.out0;
      const T* ur = u + std::size_t(n) * g.rows;
      for (int j = 0; j < g.rows; j++) {
        dm[j] += dyr[j] * ur[j] / norm[j];  // the norm is a constant: detached
        dsr[j] = m[j] / norm[j] * dyr[j];
      }
    }
  }
  return dys;
}

template <class T>
void LinearAdapter<T>::backward(const Arenas<T>& a, T* dx, const T* dy, const T* x, int N) const {
  for (const Segment& g : segments_) {
    const T* h = a.a(g.h);
    T* dh = a.a(g.dh);
    const T* dys = dy + g.out0;  // (N,rows) with leading dimension out
    gemm<T>(true, false, g.rows, r_, N, T(s_), dys, out_, h, r_, T(1), a.g(g.B), r_);   // dB += s·dyᵀ·h
    gemm<T>(false, false, N, r_, g.rows, T(s_), dys, out_, a.p(g.B), r_, T(0), dh, r_);  // dh = s·dy·B
    gemm<T>(true, false, r_, in_, N, T(1), dh, r_, x, in_, T(1), a.g(g.A), in_);         // dA += dhᵀ·x
    if (dx) gemm<T>(false, false, N, in_, r_, T(1), dh, r_, a.p(g.A), in_, T(1), dx, in_);  // dx += dh·A
  }
}

template <class T>
void LinearAdapter<T>::init_from_base(const Arenas<T>& a) const {
  for (const Segment& g : segments_) {
    if (method_ == FinetuneMethod::DoRA) {  // B = 0: ‖W₀ + s·B·A‖ = ‖W₀‖
      row_norms(a, g, a.p(g.mag));
      continue;
    }
    if (method_ != FinetuneMethod::PiSSA) continue;
    // PEFT's PiSSA: W₀ = U·S·Vᵀ, S_r ← S_r / s, B = U_r·√S_r, A = √S_r·V_rᵀ, W₀ ← W₀ − s·B·A.
    const int m = g.rows, n = in_;
    std::vector<double> w(std::size_t(m) * n), U(std::size_t(m) * r_), S(r_), Vt(std::size_t(r_) * n);
    for (int j = 0; j < m; j++) std::copy(base_row(a, g, j), base_row(a, g, j) + n, w.begin() + std::size_t(j) * n);
    kernels::top_singular_triplets(w.data(), m, n, r_, pissa_iters_, U.data(), S.data(), Vt.data());
    T* A = a.p(g.A);
    T* B = a.p(g.B);
    for (int k = 0; k < r_; k++) {
      const double root = std::sqrt(S[k] / s_);
      for (int j = 0; j < m; j++) B[std::size_t(j) * r_ + k] = T(U[std::size_t(j) * r_ + k] * root);
      for (int i = 0; i < n; i++) A[std::size_t(k) * n + i] = T(Vt[std::size_t(k) * n + i] * root);
    }
    T* w0 = a.p(g.base) + std::size_t(g.base_row0) * in_;
    gemm<T>(false, false, m, n, r_, T(-s_), B, r_, A, n, T(1), w0, n);
  }
}

template <class T>
void LinearAdapter<T>::merge(const Arenas<T>& a, int sign) const {
  if ((sign > 0) == merged_) throw std::logic_error(merged_ ? "adapters already merged" : "adapters not merged");
  for (const Segment& g : segments_) {
    T* w0 = a.p(g.base) + std::size_t(g.base_row0) * in_;
    T* norm = g.norm == kAbsent ? nullptr : a.a(g.norm);
    const T* m = g.mag == kAbsent ? nullptr : a.p(g.mag);
    if (m && sign < 0) {  // W' = m/n ⊙ (W₀ + s·B·A) → W₀ + s·B·A, with n kept from the merge
      for (int j = 0; j < g.rows; j++)
        for (int i = 0; i < in_; i++) w0[std::size_t(j) * in_ + i] *= norm[j] / m[j];
    }
    gemm<T>(false, false, g.rows, in_, r_, T(sign * s_), a.p(g.B), r_, a.p(g.A), in_, T(1), w0, in_);
    if (m && sign > 0) {
      for (int j = 0; j < g.rows; j++) {
        T sq = 0;
        for (int i = 0; i < in_; i++) sq += w0[std::size_t(j) * in_ + i] * w0[std::size_t(j) * in_ + i];
        norm[j] = std::sqrt(sq);
        for (int i = 0; i < in_; i++) w0[std::size_t(j) * in_ + i] *= m[j] / norm[j];
      }
    }
  }
  merged_ = sign > 0;
}

template class LinearAdapter<float>;
template class LinearAdapter<double>;

}  // namespace ellm
