// RWKV-6 channel mix (RWKV-LM's RWKV_CMix_x060), as a channel mixer of hidden width d_ff:
//   xx = shift(x) − x;  k = relu((x + xx ⊙ μk) Wkᵀ)²;  out = σ((x + xx ⊙ μr) Wrᵀ) ⊙ (k Wvᵀ)
// Tensor parallelism: the key is column-parallel (d_ff/tp hidden units per rank), the value
// row-parallel (a partial sum of k Wvᵀ). The receptance acts on the whole input and is
// replicated; the gate multiplies each rank's partial sum (σ(·) ⊙ Σ = Σ σ(·) ⊙), so the output is
// still a partial sum, but each rank's gradient for Wr, μr and μk sees only its own part: declared
// partial and summed after backward.
#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/vmath.hpp"
#include "layers/token_shift.hpp"
#include "model/channel_mixer.hpp"
#include "model/parallel_linear.hpp"
#include "model/rwkv_init.hpp"

namespace ellm {
namespace {
using namespace layers;
using rwkv::undecayed;

template <class T>
class RwkvChannelMix final : public ChannelMixer<T> {
 public:
  RwkvChannelMix(const ModelConfig& m, int max_batch, const Declarer& d, const TpShard& tp)
      : T_(m.seq_len), C_(m.d_model), F_(m.d_ff / tp.size) {
    const int C = C_, N = max_batch * m.seq_len;
    const double r10 = rwkv::ratio_1_to_almost0(m, d.layer);
    const bool split = tp.size > 1;
    const auto mix = [r10](int) { return std::pair{r10, 0.0}; };
    maa_k_ = d.param(undecayed(weight("maa_k", {C}, rwkv::shift_mix("rwkv cmix maa_k = 1 − (c/C)^r10", mix))).partial(split));
    maa_r_ = d.param(undecayed(weight("maa_r", {C}, rwkv::shift_mix("rwkv cmix maa_r = 1 − (c/C)^r10", mix))).partial(split));
    key_.declare(d, C, {weight("key.w", {m.d_ff, C}, Init::normal(m.init_std)).sharded(tp.along(0, {{0, m.d_ff}}))});
    recept_.declare(d, C, {weight("receptance.w", {C, C}, Init::normal(m.init_std)).partial(split)});
    value_.declare(d, "value", m.d_ff, C, residual_init(m), false, tp);
    kpre_ = d.buffer("kpre", {N, F_});
    ksq_ = d.buffer("ksq", {N, F_});
    rr_ = d.buffer("receptance", {N, C});
    kv_ = d.buffer("kv", {N, C});
  }

  std::size_t scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * T_;
    return 5 * N * C_ + N * F_;
  }

  void forward(const Arenas<T>& a, const T* x, T* out, int B) override {
    forward_tokens(a, x, out, B, T_, nullptr);
  }

  // The decoding state (rwkv_channel_mix_cost's): each sequence's last input (B,C).
  struct Cache final : MixerCache {
    std::vector<T> last;
  };
  std::unique_ptr<MixerCache> make_cache(int B) const override {
    auto c = std::make_unique<Cache>();
    c->last.assign(std::size_t(B) * C_, T(0));
    return c;
  }
  void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c,
                     MixerCache* cache) override {
    forward_tokens(a, x, out, B, c, &static_cast<Cache&>(*cache));
  }

  // forward over B sequences of Tn tokens, the shift continuing from the cache (or zeros).
  void forward_tokens(const Arenas<T>& a, const T* x, T* out, int B, int Tn, Cache* cache) {
    const int N = B * Tn;
    const std::size_t NC = std::size_t(N) * C_, NF = std::size_t(N) * F_;
    T *xx = a.scratch, *xin = xx + NC;
    token_shift_forward(xx, x, B, Tn, C_);
    if (cache) token_shift_continue(xx, cache->last.data(), x, B, Tn, C_);
    lerp_forward(xin, x, xx, a.p(maa_k_), static_cast<const T*>(nullptr), N, C_);
    T *kpre = a.a(kpre_), *ksq = a.a(ksq_), *rr = a.a(rr_), *kv = a.a(kv_);
    key_.forward(a, xin, kpre, N);  // (N,F)
    for (std::size_t i = 0; i < NF; i++) ksq[i] = kpre[i] > 0 ? kpre[i] * kpre[i] : T(0);
    value_.forward(a, ksq, kv, N);  // (N,C) partial
    lerp_forward(xin, x, xx, a.p(maa_r_), static_cast<const T*>(nullptr), N, C_);
    recept_.forward(a, xin, rr, N);  // (N,C)
    for (std::size_t i = 0; i < NC; i++) {
      rr[i] = T(1) / (T(1) + kernels::vexp(-rr[i]));
      out[i] = rr[i] * kv[i];
    }
  }

  void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) override {
    const int N = B * T_;
    const std::size_t NC = std::size_t(N) * C_, NF = std::size_t(N) * F_;
    T *xx = a.scratch, *dxx = xx + NC, *xin = dxx + NC, *dxin = xin + NC, *g = dxin + NC, *dk = g + NC;
    const T *kpre = a.a(kpre_), *rr = a.a(rr_), *kv = a.a(kv_);
    token_shift_forward(xx, x, B, T_, C_);
    std::fill(dx, dx + NC, T(0));
    std::fill(dxx, dxx + NC, T(0));
    for (std::size_t i = 0; i < NC; i++) g[i] = dout[i] * rr[i];  // d(kv)
    value_.backward(a, dk, g, a.a(ksq_), N);                        // (N,F) d(ksq)
    for (std::size_t i = 0; i < NF; i++) dk[i] *= kpre[i] > 0 ? 2 * kpre[i] : T(0);
    lerp_forward(xin, x, xx, a.p(maa_k_), static_cast<const T*>(nullptr), N, C_);
    key_.backward(a, dxin, dk, xin, N);
    lerp_backward(dx, dxx, a.g(maa_k_), static_cast<T*>(nullptr), dxin, xx, a.p(maa_k_),
                  static_cast<const T*>(nullptr), N, C_);
    for (std::size_t i = 0; i < NC; i++) g[i] = dout[i] * kv[i] * rr[i] * (T(1) - rr[i]);  // d(pre-σ)
    lerp_forward(xin, x, xx, a.p(maa_r_), static_cast<const T*>(nullptr), N, C_);
    recept_.backward(a, dxin, g, xin, N);
    lerp_backward(dx, dxx, a.g(maa_r_), static_cast<T*>(nullptr), dxin, xx, a.p(maa_r_),
                  static_cast<const T*>(nullptr), N, C_);
    token_shift_backward(dx, dxx, B, T_, C_);
  }

 private:
  int T_, C_, F_;
  std::size_t maa_k_, maa_r_;
  ColumnParallelLinear<T> key_, recept_;
  RowParallelLinear<T> value_;
  std::size_t kpre_, ksq_, rr_, kv_;
};

}  // namespace

template <class T>
std::unique_ptr<ChannelMixer<T>> make_rwkv_channel_mix(const ModelConfig& m, int max_batch,
                                                       const Declarer& d, const TpShard& tp) {
  return std::make_unique<RwkvChannelMix<T>>(m, max_batch, d, tp);
}
template std::unique_ptr<ChannelMixer<float>> make_rwkv_channel_mix<float>(const ModelConfig&, int,
                                                                           const Declarer&, const TpShard&);
template std::unique_ptr<ChannelMixer<double>> make_rwkv_channel_mix<double>(const ModelConfig&, int,
                                                                             const Declarer&, const TpShard&);

// key and value (2·C·d_ff) and the receptance (C²); state: the previous token's input (C).
ModuleCost rwkv_channel_mix_cost(const ModelConfig& m) {
  ModuleCost c;
  c.matmul_weights = 2.0 * m.d_model * m.d_ff + double(m.d_model) * m.d_model;
  c.state_elems_per_sequence = m.d_model;
  return c;
}

}  // namespace ellm
