// RWKV-6 "Finch" time mix (Peng et al. 2024; RWKV-LM's RWKV_Tmix_x060), as a token mixer:
//   xx = shift(x) − x;  h = tanh((x + xx ⊙ μx) W1ᵀ) (N,5D)            data-dependent lerp (ddlerp)
//   x_j = x + xx ⊙ (μ_j + h_j W2_jᵀ)  for j ∈ {w, k, v, r, g}
//   r, k, v = x_r Wrᵀ, x_k Wkᵀ, x_v Wvᵀ;  g = silu(x_g Wgᵀ)
//   d = decay + tanh(x_w Dw1ᵀ) Dw2ᵀ,  w = exp(−exp(d))                 per-channel decay
//   y = WKV(r, k, v, w, u) per head (layers/wkv6.hpp);  out = (GroupNorm_head(y) ⊙ g) Woᵀ
// Tensor parallelism splits the heads: r, k, v, g, Dw2 and the decay, u and the group norm are
// this rank's heads' rows; Wo is row-parallel. The ddlerp (μ's, W1, W2) and Dw1 act on the whole
// C-wide input and are replicated: every rank computes them whole, but each rank's gradient for
// them comes only from its own heads, so they are declared partial (summed after backward).
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/vmath.hpp"
#include "layers/norm.hpp"
#include "layers/token_shift.hpp"
#include "layers/wkv6.hpp"
#include "model/rwkv_init.hpp"
#include "model/token_mixer.hpp"

namespace ellm {
namespace {
using namespace layers;
using rwkv::undecayed;

constexpr int kBranches = 5;  // the ddlerp's outputs, in the reference's order: w, k, v, r, g
enum Branch { kW, kK, kV, kR, kG };
// nn.GroupNorm(H, C, eps = 1e-5 · head_size_divisor²) with the reference's divisor 8.
constexpr double kGroupNormEps = 64e-5;

template <class T>
T sigmoid(T x) { return T(1) / (T(1) + kernels::vexp(-x)); }

template <class T>
class Rwkv6TimeMix final : public TokenMixer<T> {
 public:
  Rwkv6TimeMix(const ModelConfig& m, int max_batch, const Declarer& d, const TpShard& tp)
      : T_(m.seq_len), C_(m.d_model), hs_(m.rwkv_head_size), H_(m.rwkv_heads() / tp.size),
        Cl_(H_ * hs_), D_(m.rwkv_mix_lora), Dd_(m.rwkv_decay_lora), chunk_(m.rwkv_chunk) {
    const int C = C_, D = D_, N = max_batch * m.seq_len, l = d.layer;
    const double r01 = rwkv::ratio_0_to_1(m, l), r10 = rwkv::ratio_1_to_almost0(m, l);
    const bool split = tp.size > 1;
    const Shard heads = tp.along(0, {{0, C}});  // this rank's heads' channels (rows)
    maa_x_ = d.param(undecayed(weight("maa_x", {C}, rwkv::shift_mix("rwkv6 maa_x = 1 − (c/C)^r10", [r10](int) {
                                  return std::pair{r10, 0.0};
                                }))).partial(split));
    maa_ = d.param(undecayed(weight("maa_wkvrg", {kBranches, C},
                                    rwkv::shift_mix("rwkv6 maa_{w,k,v,r,g}", [r10, r01](int row) {
                                      if (row == kV) return std::pair{r10, 0.3 * r01};
                                      return std::pair{row >= kR ? 0.5 * r10 : r10, 0.0};
                                    })))
                       .partial(split));
    mix1_.declare(d, C, {undecayed(weight("maa_w1", {kBranches * D, C}, Init::zeros())).partial(split)});
    // uniform(−0.01, 0.01) in the reference; a normal of the same variance here
    mix2_ = d.param(undecayed(weight("maa_w2", {kBranches, C, D}, Init::normal(0.01 / std::sqrt(3.0))))
                        .partial(split));
    dec1_.declare(d, C, {undecayed(weight("decay_w1", {Dd_, C}, Init::zeros())).partial(split)});
    TensorDecl decay = bias("decay", {C});
    decay.init = Init::custom("rwkv6 decay = −6 + 5·(c/(C−1))^(0.7 + 1.3·r01)", [r01](std::size_t i, const std::vector<int>& s) {
      return -6.0 + 5.0 * std::pow(double(i) / std::max(s[0] - 1, 1), 0.7 + 1.3 * r01);
    });
    mix1_.served = dec1_.served = dec2_.served = false;  // low rank: inference keeps them fp32
    dec2_.declare(d, Dd_, {undecayed(weight("decay_w2", {C, Dd_}, Init::normal(0.01 / std::sqrt(3.0)))).sharded(heads)},
                  {std::move(decay).sharded(heads)});
    TensorDecl u = bias("u", {C});
    u.init = Init::custom("rwkv6 u = r01·(1 − c/(C−1)) + ((c+1) mod 3 − 1)·0.1", [r01](std::size_t i, const std::vector<int>& s) {
      return r01 * (1.0 - double(i) / std::max(s[0] - 1, 1)) + double(int((i + 1) % 3) - 1) * 0.1;
    });
    u_ = d.param(std::move(u).sharded(heads));
    const Init init = Init::normal(m.init_std);  // RWKV-LM: orthogonal; docs/ATTENTION_FREE.md
    for (const int j : {kR, kK, kV, kG})  // the reference's declaration order
      projection(j).declare(d, C, {weight(std::string(1, "wkvrg"[j]) + ".w", {C, C}, init).sharded(heads)});
    TensorDecl gn_w = gain("ln_x.w", {C});
    gn_w.init = Init::constant(std::pow(double(l + 1) / m.n_layers, 0.7));
    gn_w_ = d.param(std::move(gn_w).sharded(heads));
    gn_b_ = d.param(bias("ln_x.b", {C}).sharded(heads));
    out_.declare(d, "out", C, C, residual_init(m), false, tp);
    hmix_ = d.buffer("hmix", {N, kBranches * D});
    // (N, Cl) each: r, k, v, the gate before silu, the decay d, WKV's output, the output's input
    r_buf_ = d.buffer("r", {N, Cl_});
    k_buf_ = d.buffer("k", {N, Cl_});
    v_buf_ = d.buffer("v", {N, Cl_});
    g_buf_ = d.buffer("g", {N, Cl_});
    dec_buf_ = d.buffer("d", {N, Cl_});
    y_buf_ = d.buffer("wkv", {N, Cl_});
    z_buf_ = d.buffer("z", {N, Cl_});
    hd_ = d.buffer("hd", {N, Dd_});
    mean_ = d.buffer("gn_mean", {N, H_});
    rstd_ = d.buffer("gn_rstd", {N, H_});
    states_ = d.buffer("wkv_states", {max_batch, H_, shape(max_batch).chunks(), hs_, hs_});
  }

  std::size_t scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * T_;
    const std::size_t forward = 4 * N * C_;
    const std::size_t backward = 8 * N * Cl_ + N * Dd_ + N * kBranches * D_ + 5 * N * C_;
    return std::max(forward, backward);
  }

  void forward(const Arenas<T>& a, const T* x, T* out, int B) override {
    forward_tokens(a, x, out, B, T_, nullptr);
  }

  // The decoding state (rwkv6_cost's): each sequence's last input (C) and WKV state (H,hs,hs).
  struct Cache final : MixerCache {
    std::vector<T> last, wkv;  // (B,C), (B,H,hs,hs)
  };
  std::unique_ptr<MixerCache> make_cache(int B, int) const override {
    auto c = std::make_unique<Cache>();
    c->last.assign(std::size_t(B) * C_, T(0));
    c->wkv.assign(std::size_t(B) * H_ * hs_ * hs_, T(0));
    return c;
  }
  void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c, int,
                     MixerCache& cache) override {
    forward_tokens(a, x, out, B, c, &static_cast<Cache&>(cache));
  }

 private:
  // forward over B sequences of Tn tokens; with a cache, the shift and the WKV state continue
  // from it and it is left holding this chunk's end (nullptr: a whole sequence from zeros).
  void forward_tokens(const Arenas<T>& a, const T* x, T* out, int B, int Tn, Cache* cache) {
    const int N = B * Tn;
    const std::size_t NC = std::size_t(N) * C_;
    T *xx = a.scratch, *xxx = xx + NC, *m = xxx + NC, *xj = m + NC;
    token_shift_forward(xx, x, B, Tn, C_);
    if (cache) token_shift_continue(xx, cache->last.data(), x, B, Tn, C_);
    lerp_forward(xxx, x, xx, a.p(maa_x_), static_cast<const T*>(nullptr), N, C_);
    T* h = a.a(hmix_);
    mix1_.forward(a, xxx, h, N);  // (N,5D)
    for (std::size_t i = 0; i < std::size_t(N) * kBranches * D_; i++) h[i] = kernels::vtanh(h[i]);
    for (int j = 0; j < kBranches; j++) {
      branch_input(a, x, xx, m, xj, j, N);
      if (j == kW) {
        dec1_.forward(a, xj, a.a(hd_), N);  // (N,Dd)
        T* hd = a.a(hd_);
        for (std::size_t i = 0; i < std::size_t(N) * Dd_; i++) hd[i] = kernels::vtanh(hd[i]);
        dec2_.forward(a, hd, a.a(dec_buf_), N);  // (N,Cl) d = decay + ...
      } else {
        projection(j).forward(a, xj, a.a(projection_buf(j)), N);  // (N,Cl)
      }
    }
    T* y = a.a(y_buf_);
    T* state = cache ? cache->wkv.data() : nullptr;  // init and final: the same state, continued
    wkv6_forward(y, a.a(states_), a.a(r_buf_), a.a(k_buf_), a.a(v_buf_), a.a(dec_buf_), a.p(u_),
                 Wkv6Shape{B, Tn, H_, hs_, chunk_}, state, state);
    T *z = a.a(z_buf_), *g = a.a(g_buf_);
    for (int n = 0; n < N; n++) {
      for (int hh = 0; hh < H_; hh++) {
        const std::size_t o = std::size_t(n) * Cl_ + std::size_t(hh) * hs_, nh = std::size_t(n) * H_ + hh;
        layernorm_forward(z + o, a.a(mean_) + nh, a.a(rstd_) + nh, y + o, a.p(gn_w_) + hh * hs_,
                          a.p(gn_b_) + hh * hs_, 1, hs_, kGroupNormEps);
      }
    }
    for (std::size_t i = 0; i < std::size_t(N) * Cl_; i++) z[i] *= g[i] * sigmoid(g[i]);  // ⊙ silu(g)
    out_.forward(a, z, out, N);  // (N,C) partial
  }

 public:
  void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) override {
    const int N = B * T_;
    const std::size_t NC = std::size_t(N) * C_, NCl = std::size_t(N) * Cl_;
    T* p = a.scratch;
    const auto take = [&p](std::size_t n) { return std::exchange(p, p + n); };
    T *dz = take(NCl), *dyn = take(NCl), *dy = take(NCl);
    T *dr = take(NCl), *dk = take(NCl), *dv = take(NCl), *dgr = take(NCl), *ddec = take(NCl);
    T *dhd = take(std::size_t(N) * Dd_), *dh = take(std::size_t(N) * kBranches * D_);
    T *xx = take(NC), *dxx = take(NC), *m = take(NC), *xj = take(NC), *dxj = take(NC);
    out_.backward(a, dz, dout, a.a(z_buf_), N);  // (N,Cl)
    gate_backward(a, dz, dyn, dgr, N);
    std::fill(dy, dy + NCl, T(0));
    for (int n = 0; n < N; n++) {
      for (int hh = 0; hh < H_; hh++) {
        const std::size_t o = std::size_t(n) * Cl_ + std::size_t(hh) * hs_, nh = std::size_t(n) * H_ + hh;
        layernorm_backward(dy + o, a.g(gn_w_) + hh * hs_, a.g(gn_b_) + hh * hs_, dyn + o, a.a(y_buf_) + o,
                           a.p(gn_w_) + hh * hs_, a.a(mean_) + nh, a.a(rstd_) + nh, 1, hs_);
      }
    }
    wkv6_backward(dr, dk, dv, ddec, a.g(u_), dy, a.a(r_buf_), a.a(k_buf_), a.a(v_buf_), a.a(dec_buf_),
                  a.p(u_), a.a(states_), shape(B));
    token_shift_forward(xx, x, B, T_, C_);
    std::fill(dx, dx + NC, T(0));
    std::fill(dxx, dxx + NC, T(0));
    const T* h = a.a(hmix_);
    const T* dproj[kBranches] = {ddec, dk, dv, dr, dgr};
    for (int j = 0; j < kBranches; j++) {
      branch_input(a, x, xx, m, xj, j, N);
      if (j == kW) {
        const T* hd = a.a(hd_);
        dec2_.backward(a, dhd, ddec, hd, N);  // (N,Dd)
        for (std::size_t i = 0; i < std::size_t(N) * Dd_; i++) dhd[i] *= T(1) - hd[i] * hd[i];
        dec1_.backward(a, dxj, dhd, xj, N);
      } else {
        projection(j).backward(a, dxj, dproj[j], xj, N);
      }
      lerp_backward(dx, dxx, a.g(maa_) + j * C_, m, dxj, xx, a.p(maa_) + j * C_, m, N, C_);  // m ← dm
      const T* W2 = a.p(mix2_) + std::size_t(j) * C_ * D_;
      kernels::gemm(false, false, N, D_, C_, T(1), m, C_, W2, D_, T(0), dh + j * D_, kBranches * D_);
      kernels::gemm(true, false, C_, D_, N, T(1), m, C_, h + j * D_, kBranches * D_, T(1),
                    a.g(mix2_) + std::size_t(j) * C_ * D_, D_);  // dW2_j (C,D) += dmᵀ h_j
    }
    for (std::size_t i = 0; i < std::size_t(N) * kBranches * D_; i++) dh[i] *= T(1) - h[i] * h[i];
    lerp_forward(xj, x, xx, a.p(maa_x_), static_cast<const T*>(nullptr), N, C_);  // xxx
    mix1_.backward(a, dxj, dh, xj, N);
    lerp_backward(dx, dxx, a.g(maa_x_), static_cast<T*>(nullptr), dxj, xx, a.p(maa_x_),
                  static_cast<const T*>(nullptr), N, C_);
    token_shift_backward(dx, dxx, B, T_, C_);
  }

  // x_j (N,C) = x + xx ⊙ (μ_j + m_j), with m_j = h_j W2_jᵀ written to m (N,C).
  void branch_input(const Arenas<T>& a, const T* x, const T* xx, T* m, T* xj, int j, int N) const {
    kernels::gemm(false, true, N, C_, D_, T(1), a.a(hmix_) + j * D_, kBranches * D_,
                  a.p(mix2_) + std::size_t(j) * C_ * D_, D_, T(0), m, C_);
    lerp_forward(xj, x, xx, a.p(maa_) + j * C_, m, N, C_);
  }

  // z = GN(y) ⊙ silu(g): dgn (N,Cl) = dz ⊙ silu(g), dg (N,Cl) = dz ⊙ GN(y) ⊙ silu'(g); GN(y) is
  // recomputed from the saved statistics.
  void gate_backward(const Arenas<T>& a, const T* dz, T* dgn, T* dg, int N) const {
    const T *y = a.a(y_buf_), *g = a.a(g_buf_), *w = a.p(gn_w_), *b = a.p(gn_b_);
    for (int n = 0; n < N; n++) {
      for (int c = 0; c < Cl_; c++) {
        const std::size_t i = std::size_t(n) * Cl_ + c, nh = std::size_t(n) * H_ + c / hs_;
        const T gn = (y[i] - a.a(mean_)[nh]) * a.a(rstd_)[nh] * w[c] + b[c];
        const T sg = sigmoid(g[i]);
        dgn[i] = dz[i] * g[i] * sg;
        dg[i] = dz[i] * gn * sg * (T(1) + g[i] * (T(1) - sg));
      }
    }
  }

  ColumnParallelLinear<T>& projection(int j) {
    return j == kK ? k_ : j == kV ? v_ : j == kR ? r_ : g_;
  }
  std::size_t projection_buf(int j) const {
    return j == kK ? k_buf_ : j == kV ? v_buf_ : j == kR ? r_buf_ : g_buf_;
  }
  layers::Wkv6Shape shape(int B) const { return {B, T_, H_, hs_, chunk_}; }

  int T_, C_, hs_, H_, Cl_, D_, Dd_, chunk_;
  std::size_t maa_x_, maa_, mix2_, u_, gn_w_, gn_b_;
  ColumnParallelLinear<T> mix1_, dec1_, dec2_, r_, k_, v_, g_;
  RowParallelLinear<T> out_;
  std::size_t hmix_, r_buf_, k_buf_, v_buf_, g_buf_, dec_buf_, y_buf_, z_buf_, hd_, mean_, rstd_, states_;
};

}  // namespace

template <class T>
std::unique_ptr<TokenMixer<T>> make_rwkv6_mixer(const ModelConfig& m, int max_batch, const Declarer& d,
                                                const TensorParallel<T>& tp) {
  return std::make_unique<Rwkv6TimeMix<T>>(m, max_batch, d, tp.shard);
}
template std::unique_ptr<TokenMixer<float>> make_rwkv6_mixer<float>(const ModelConfig&, int,
                                                                    const Declarer&,
                                                                    const TensorParallel<float>&);
template std::unique_ptr<TokenMixer<double>> make_rwkv6_mixer<double>(const ModelConfig&, int,
                                                                      const Declarer&,
                                                                      const TensorParallel<double>&);

// Matmul weights: r, k, v, g, output (5C²), the ddlerp (C·5D twice) and the decay projection
// (2·C·Dd). Other FLOPs: the recurrence per head and token, read-out r·S and update k vᵀ, each
// hs² multiply–adds: 4·H·hs² = 4·C·hs (the decay scaling is elementwise, uncounted). State: the
// matrix state per head (C·hs) and the previous token's input (C).
ModuleCost rwkv6_cost(const ModelConfig& m) {
  const double C = m.d_model, hs = m.rwkv_head_size;
  ModuleCost c;
  c.matmul_weights = 5 * C * C + 2 * C * kBranches * m.rwkv_mix_lora + 2 * C * m.rwkv_decay_lora;
  c.other_flops_per_token = 4 * C * hs;
  c.state_elems_per_sequence = C * hs + C;
  return c;
}

}  // namespace ellm
