#include "model/adapter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/gemm.hpp"
#include "kernels/svd.hpp"
#include "util/rng.hpp"

namespace ellm {
using kernels::gemm;

namespace {
using Site = TensorDecl::AdapterSite;
using Factor = Site::Factor;

int local_rows(int full_rows, const Shard& s) {
  if (s.dim < 0) return full_rows;
  int rows = 0;
  for (const auto& [b, e] : s.ranges) rows += e - b;
  return rows;
}

// The name of the base weight declared at `offset` (what the adapter's tensors say they adapt).
std::string name_at(const ArenaLayout& params, std::size_t offset) {
  for (const TensorInfo& t : params.tensors())
    if (t.offset == offset && t.numel > 0) return t.name;
  throw std::logic_error("adapter: no base weight at its offset");
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
  dropout_ = f.dropout;
  return f.method == FinetuneMethod::LoRAPlus ? f.lora_plus_ratio : 1.0;  // B's learning-rate factor
}

template <class T>
void LinearAdapter<T>::declare_buffers(const Declarer& d, Segment& g, const std::string& name,
                                       int max_rows) {
  g.h = d.buffer(name + ".lora_h", {max_rows, r_});
  g.dh = d.buffer(name + ".lora_dh", {max_rows, r_});
  if (dropout_ > 0) {
    g.xd = d.buffer(name + ".lora_x_dropped", {max_rows, in_});
    const std::string key = d.prefix + name;  // "h.3.attn.q": the same on every rank
    g.mask_key = 0xcbf29ce484222325ull;        // FNV-1a
    for (const char c : key) g.mask_key = (g.mask_key ^ std::uint8_t(c)) * 0x100000001b3ull;
  }
  if (method_ != FinetuneMethod::DoRA) return;
  g.u = d.buffer(name + ".dora_u", {max_rows, g.rows});
  g.norm = d.buffer(name + ".dora_norm", {g.rows});
}

template <class T>
void LinearAdapter<T>::declare_column(const Declarer& d, const FinetuneConfig& f, int in, int out,
                                      const std::vector<Target>& targets, int max_rows) {
  if (!f.adapters()) return;
  const double b_lr = configure(f, in, out);
  in_full_ = in;
  for (const Target& t : targets) {
    if (!f.targets(t.name)) continue;
    Segment g{t.base, t.base_row0, t.out0, local_rows(t.full_rows, t.rows), 0, 0, kAbsent, 0, 0};
    g.full_rows = t.full_rows;
    g.row_ranges = t.rows.ranges;
    const Shard rows{t.rows.dim, t.rows.ranges, 1};  // B (full_rows, r) and m by the same rows
    const bool split = t.rows.dim >= 0;
    const std::string base = name_at(d.params, t.base);
    const auto site = [&](Factor f) { return Site{f, base, t.full_row0, t.full_rows}; };
    g.A = d.param(weight(t.name + ".lora_A", {r_, in}, Init::uniform(1 / std::sqrt(double(in))))
                      .partial(split)
                      .adapter_of_base(site(Factor::A)));
    g.B = d.param(weight(t.name + ".lora_B", {t.full_rows, r_}, Init::zeros())
                      .sharded(rows)
                      .adapter_of_base(site(Factor::B), b_lr));
    if (method_ == FinetuneMethod::DoRA)
      g.mag = d.param(gain(t.name + ".lora_magnitude", {t.full_rows}).sharded(rows).adapter_of_base(site(Factor::Magnitude)));
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
  in0_ = tp.part(in_full).first;
  in_full_ = in_full;
  row_parallel_ = true;
  tp_norms_ = method_ == FinetuneMethod::DoRA && tp.size > 1;
  Segment g{base, 0, 0, out, 0, 0, kAbsent, 0, 0};
  g.full_rows = out;
  const std::string base_name = name_at(d.params, base);
  const auto site = [&](Factor f) { return Site{f, base_name, 0, out}; };
  g.A = d.param(weight(name + ".lora_A", {r_, in_full}, Init::uniform(1 / std::sqrt(double(in_full))))
                    .sharded(tp.along(1, {{0, in_full}}))
                    .adapter_of_base(site(Factor::A)));
  g.B = d.param(weight(name + ".lora_B", {out, r_}, Init::zeros())
                    .partial(tp.size > 1)
                    .adapter_of_base(site(Factor::B), b_lr));
  if (method_ == FinetuneMethod::DoRA)
    g.mag = d.param(gain(name + ".lora_magnitude", {out}).partial(tp.size > 1).adapter_of_base(site(Factor::Magnitude)));
  declare_buffers(d, g, name, max_rows);
  segments_.push_back(g);
  if (method_ == FinetuneMethod::DoRA) dy_scaled_ = d.buffer("dora_dy", {max_rows, out});
}

template <class T>
void LinearAdapter<T>::squares_to_norms(T* norm, int rows, const TensorParallel<T>& tp) const {
  if (row_parallel_) tp.all_reduce_sum(norm, std::size_t(rows));  // each rank holds some columns
  for (int j = 0; j < rows; j++) norm[j] = std::sqrt(norm[j]);
}

template <class T>
void LinearAdapter<T>::row_norms(const Arenas<T>& a, const Segment& g, T* norm,
                                 const TensorParallel<T>& tp) const {
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
    norm[j] = sq;
  }
  squares_to_norms(norm, g.rows, tp);
}

template <class T>
void LinearAdapter<T>::refresh_norms(const Arenas<T>& a, const TensorParallel<T>& tp) const {
  if (!tp_norms_ || held_ || merged_) return;
  for (const Segment& g : segments_) row_norms(a, g, a.a(g.norm), tp);
}

template <class T>
std::uint64_t LinearAdapter<T>::mask_row(const DropoutDraw& d, const Segment& g, int n) const {
  const std::uint64_t sample = std::uint64_t(d.first_sample + n / d.seq_len), position = n % d.seq_len;
  return derive_seed(derive_seed(derive_seed(d.seed, g.mask_key), sample), position);
}

template <class T>
T LinearAdapter<T>::keep_factor(std::uint64_t row, int i) const {
  const double u = double(derive_seed(row, std::uint64_t(in0_ + i)) >> 11) * 0x1.0p-53;  // [0, 1)
  return u < dropout_ ? T(0) : T(1 / (1 - dropout_));
}

template <class T>
const T* LinearAdapter<T>::dropped_input(const Arenas<T>& a, const Segment& g, const T* x, int N) const {
  if (g.xd == kAbsent || a.dropout == nullptr) return x;
  T* xd = a.a(g.xd);
  for (int n = 0; n < N; n++) {
    const std::uint64_t row = mask_row(*a.dropout, g, n);
    const T* xr = x + std::size_t(n) * in_;
    T* dr = xd + std::size_t(n) * in_;
    for (int i = 0; i < in_; i++) dr[i] = xr[i] * keep_factor(row, i);
  }
  return xd;
}

template <class T>
void LinearAdapter<T>::forward(const Arenas<T>& a, const T* x, const T* b, T* y, int N) const {
  if (merged_) return;
  for (const Segment& g : segments_) {
    T* h = a.a(g.h);
    const T* xa = dropped_input(a, g, x, N);  // (N,in) x̃ or x
    gemm<T>(false, true, N, r_, in_, T(1), xa, in_, a.p(g.A), in_, T(0), h, r_);  // (N,r)
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
    static const TensorParallel<T> alone;  // tp_norms_: refresh_norms summed them over the ranks
    if (!held_ && !tp_norms_) row_norms(a, g, norm, alone);
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
    const bool dropped = g.xd != kAbsent && a.dropout != nullptr;
    const T* xa = dropped ? a.a(g.xd) : x;  // forward's x̃ or x
    gemm<T>(true, false, r_, in_, N, T(1), dh, r_, xa, in_, T(1), a.g(g.A), in_);        // dA += dhᵀ·x̃
    if (!dx) continue;
    if (!dropped) {
      gemm<T>(false, false, N, in_, r_, T(1), dh, r_, a.p(g.A), in_, T(1), dx, in_);  // dx += dh·A
      continue;
    }
    T* part = a.a(g.xd);  // x̃ is used: its buffer takes dh·A, then dx += dh·A ⊙ mask/(1 − p)
    gemm<T>(false, false, N, in_, r_, T(1), dh, r_, a.p(g.A), in_, T(0), part, in_);
    for (int n = 0; n < N; n++) {
      const std::uint64_t row = mask_row(*a.dropout, g, n);
      const T* pr = part + std::size_t(n) * in_;
      T* dr = dx + std::size_t(n) * in_;
      for (int i = 0; i < in_; i++) dr[i] += pr[i] * keep_factor(row, i);
    }
  }
}

template <class T>
void LinearAdapter<T>::init_from_base(const Arenas<T>& a, const TensorParallel<T>& tp) const {
  for (const Segment& g : segments_) {
    if (method_ == FinetuneMethod::DoRA) row_norms(a, g, a.p(g.mag), tp);  // B = 0: ‖W₀ + s·B·A‖ = ‖W₀‖
    if (method_ == FinetuneMethod::PiSSA) pissa_init(a, g, tp);
  }
}

// PEFT's PiSSA: W₀ = U·S·Vᵀ, S_r ← S_r / s, B = U_r·√S_r, A = √S_r·V_rᵀ, W₀ ← W₀ − s·B·A. Under
// tensor parallelism the segment's full W₀ is put together first (each rank adds its shard to
// zeros: exact), tensor-parallel rank 0 alone takes the SVD and the others add zeros to its
// factors, so every rank holds the same factors bit for bit, whatever LAPACK's threads do.
template <class T>
void LinearAdapter<T>::pissa_init(const Arenas<T>& a, const Segment& g, const TensorParallel<T>& tp) const {
  const int m = g.full_rows, n = in_full_;
  // The full rows of this rank's local rows (column-parallel) and its columns (row-parallel).
  std::vector<int> rows;
  if (g.row_ranges.empty()) {
    for (int j = 0; j < g.rows; j++) rows.push_back(j);
  } else {
    for (const auto& [b, e] : g.row_ranges)
      for (int j = b; j < e; j++) rows.push_back(j);
  }
  const int col0 = row_parallel_ ? in0_ : 0;
  std::vector<T> w(std::size_t(m) * n, T(0));
  for (int j = 0; j < g.rows; j++)
    std::copy_n(base_row(a, g, j), in_, w.begin() + std::size_t(rows[j]) * n + col0);
  tp.all_reduce_sum(w.data(), w.size());
  std::vector<T> A(std::size_t(r_) * n, T(0)), B(std::size_t(m) * r_, T(0));  // full factors
  if (tp.shard.rank == 0) {
    std::vector<double> wd(w.begin(), w.end()), U(std::size_t(m) * r_), S(r_), Vt(std::size_t(r_) * n);
    kernels::top_singular_triplets(wd.data(), m, n, r_, pissa_iters_, U.data(), S.data(), Vt.data());
    for (int k = 0; k < r_; k++) {
      const double root = std::sqrt(S[k] / s_);
      for (int j = 0; j < m; j++) B[std::size_t(j) * r_ + k] = T(U[std::size_t(j) * r_ + k] * root);
      for (int i = 0; i < n; i++) A[std::size_t(k) * n + i] = T(Vt[std::size_t(k) * n + i] * root);
    }
  }
  tp.all_reduce_sum(A.data(), A.size());
  tp.all_reduce_sum(B.data(), B.size());
  T* a_local = a.p(g.A);
  T* b_local = a.p(g.B);
  for (int k = 0; k < r_; k++) std::copy_n(A.begin() + std::size_t(k) * n + col0, in_, a_local + std::size_t(k) * in_);
  for (int j = 0; j < g.rows; j++) std::copy_n(B.begin() + std::size_t(rows[j]) * r_, r_, b_local + std::size_t(j) * r_);
  T* w0 = a.p(g.base) + std::size_t(g.base_row0) * in_;
  gemm<T>(false, false, g.rows, in_, r_, T(-s_), b_local, r_, a_local, in_, T(1), w0, in_);
}

template <class T>
void LinearAdapter<T>::merge(const Arenas<T>& a, int sign, const TensorParallel<T>& tp) const {
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
        norm[j] = sq;
      }
      squares_to_norms(norm, g.rows, tp);
      for (int j = 0; j < g.rows; j++)
        for (int i = 0; i < in_; i++) w0[std::size_t(j) * in_ + i] *= m[j] / norm[j];
    }
  }
  merged_ = sign > 0;
}

template class LinearAdapter<float>;
template class LinearAdapter<double>;

}  // namespace ellm
