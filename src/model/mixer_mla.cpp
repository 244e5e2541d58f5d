// Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434), with decoupled RoPE:
//   c_kv = W_dkv x            (d_c)        the only per-token state the KV cache keeps,
//   k_c  = W_uk c_kv, v = W_uv c_kv        (H·hs each),
//   c_q  = W_dq x (or x when mla_q_latent = 0),  q_c = W_uq c_q,  q_r = RoPE(W_qr c_q) per head,
//   k_r  = RoPE(W_kr x)       (r, one rotary key shared by every head),
//   head h attends with q = [q_c,h ; q_r,h], k = [k_c,h ; k_r] (dk = hs + r) over v_h (dv = hs).
// The cache holds c_kv and k_r: d_c + r values per token per layer. Training materialises k_c and
// v (the absorption of W_uk into W_uq at inference is an inference-time rewrite, not done here).
#include <algorithm>

#include "layers/attention.hpp"
#include "layers/linear.hpp"
#include "layers/rope.hpp"
#include "model/mixer.hpp"

namespace ellm {
namespace {
using namespace layers;

template <class T>
class MlaMixer final : public AttentionMixer<T> {
 public:
  MlaMixer(const ModelConfig& m, int layer, int max_batch, ArenaLayout& params, ArenaLayout& acts)
      : m_(m),
        H_(m.n_heads),
        hs_(m.head_dim()),
        r_(m.mla_rope_dim),
        dc_(m.mla_kv_latent),
        dq_(m.mla_q_latent),
        qin_(dq_ > 0 ? dq_ : m.d_model),
        dk_(hs_ + r_),
        row_(2 * H_ * dk_ + H_ * hs_) {
    const std::string pre = "h." + std::to_string(layer) + ".attn.";
    const int C = m.d_model, N = max_batch * m.seq_len;
    w_dq_ = dq_ > 0 ? params.add(pre + "mla.w_dq", {dq_, C}, true, layer) : kAbsent;
    w_uq_ = params.add(pre + "mla.w_uq", {H_ * hs_, qin_}, true, layer);
    w_qr_ = params.add(pre + "mla.w_qr", {H_ * r_, qin_}, true, layer);
    w_dkv_ = params.add(pre + "mla.w_dkv", {dc_, C}, true, layer);
    w_uk_ = params.add(pre + "mla.w_uk", {H_ * hs_, dc_}, true, layer);
    w_uv_ = params.add(pre + "mla.w_uv", {H_ * hs_, dc_}, true, layer);
    w_kr_ = params.add(pre + "mla.w_kr", {r_, C}, true, layer);
    c_q_ = dq_ > 0 ? acts.add(pre + "mla.c_q", {N, dq_}, false, layer) : kAbsent;
    c_kv_ = acts.add(pre + "mla.c_kv", {N, dc_}, false, layer);
    qkv_ = acts.add(pre + "mla.qkv", {N, row_}, false, layer);  // packed, after RoPE
    lse_ = acts.add(pre + "mla.lse", {max_batch, H_, m.seq_len}, false, layer);
  }

  int width() const override { return H_ * hs_; }
  std::size_t scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * m_.seq_len;
    return N * (row_ + 3 * H_ * hs_ + H_ * r_ + r_ + dc_ + dq_ + std::max({m_.d_model, dc_, dq_}));
  }

  void forward(const Arenas<T>& a, const T* x, T* y, int B) override {
    const int N = B * m_.seq_len, C = m_.d_model;
    const Work w = work(a.scratch, B);
    const T* cq = x;
    if (dq_ > 0) {
      linear_forward(a.a(c_q_), x, a.p(w_dq_), static_cast<const T*>(nullptr), N, C,
                     dq_);  // (N,d_c')
      cq = a.a(c_q_);
    }
    linear_forward(w.q_c, cq, a.p(w_uq_), static_cast<const T*>(nullptr), N, qin_, H_ * hs_);
    linear_forward(w.q_r, cq, a.p(w_qr_), static_cast<const T*>(nullptr), N, qin_, H_ * r_);
    rope_forward(w.q_r, B, m_.seq_len, H_ * r_, H_, r_, m_.rope_base);
    linear_forward(a.a(c_kv_), x, a.p(w_dkv_), static_cast<const T*>(nullptr), N, C,
                   dc_);  // (N,d_c)
    linear_forward(w.k_c, a.a(c_kv_), a.p(w_uk_), static_cast<const T*>(nullptr), N, dc_, H_ * hs_);
    linear_forward(w.v, a.a(c_kv_), a.p(w_uv_), static_cast<const T*>(nullptr), N, dc_, H_ * hs_);
    linear_forward(w.k_r, x, a.p(w_kr_), static_cast<const T*>(nullptr), N, C, r_);
    rope_forward(w.k_r, B, m_.seq_len, r_, 1, r_, m_.rope_base);
    pack(a.a(qkv_), w, N);
    attention_forward(y, a.a(lse_), a.a(qkv_), shape(B));
  }

  void backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx, int B) override {
    const int N = B * m_.seq_len, C = m_.d_model;
    const Work w = work(a.scratch, B);  // the per-part buffers now hold gradients
    T* const no_bias = nullptr;         // MLA's projections have none
    std::fill(w.qkv, w.qkv + std::size_t(N) * row_, T(0));
    attention_backward(w.qkv, dy, y, a.a(lse_), a.a(qkv_), shape(B));
    unpack_gradients(w, N);
    rope_backward(w.q_r, B, m_.seq_len, H_ * r_, H_, r_, m_.rope_base);
    rope_backward(w.k_r, B, m_.seq_len, r_, 1, r_, m_.rope_base);
    // keys and values come from the latent: d c_kv = (dk_c) W_uk + (dv) W_uv
    linear_backward(w.dc_kv, a.g(w_uk_), no_bias, w.k_c, a.a(c_kv_), a.p(w_uk_), N, dc_, H_ * hs_);
    linear_backward_accumulate(w.dc_kv, w.tmp, a.g(w_uv_), no_bias, w.v, a.a(c_kv_), a.p(w_uv_), N,
                               dc_, H_ * hs_);
    linear_backward(dx, a.g(w_dkv_), no_bias, w.dc_kv, x, a.p(w_dkv_), N, C, dc_);
    linear_backward_accumulate(dx, w.tmp, a.g(w_kr_), no_bias, w.k_r, x, a.p(w_kr_), N, C, r_);
    // queries: through the query latent when there is one
    T* dcq = dq_ > 0 ? w.dc_q : w.tmp;
    const T* cq = dq_ > 0 ? a.a(c_q_) : x;
    if (dq_ > 0) {
      linear_backward(dcq, a.g(w_uq_), no_bias, w.q_c, cq, a.p(w_uq_), N, qin_, H_ * hs_);
      linear_backward_accumulate(dcq, w.tmp, a.g(w_qr_), no_bias, w.q_r, cq, a.p(w_qr_), N, qin_,
                                 H_ * r_);
      linear_backward_accumulate(dx, w.tmp, a.g(w_dq_), no_bias, dcq, x, a.p(w_dq_), N, C, dq_);
    } else {
      linear_backward_accumulate(dx, w.tmp, a.g(w_uq_), no_bias, w.q_c, x, a.p(w_uq_), N, C,
                                 H_ * hs_);
      linear_backward_accumulate(dx, w.tmp, a.g(w_qr_), no_bias, w.q_r, x, a.p(w_qr_), N, C,
                                 H_ * r_);
    }
  }

 private:
  // Views into the workspace: forward's projections, then backward's gradients of the same.
  struct Work {
    T *qkv, *q_c, *q_r, *k_c, *k_r, *v, *dc_kv, *dc_q, *tmp;
  };
  Work work(T* base, int B) const {
    const std::size_t N = std::size_t(B) * m_.seq_len;
    Work w;
    T* p = base;
    const auto take = [&](std::size_t n) {
      T* out = p;
      p += n;
      return out;
    };
    w.qkv = take(N * row_);
    w.q_c = take(N * H_ * hs_);
    w.q_r = take(N * H_ * r_);
    w.k_c = take(N * H_ * hs_);
    w.k_r = take(N * r_);
    w.v = take(N * H_ * hs_);
    w.dc_kv = take(N * dc_);
    w.dc_q = take(N * dq_);
    w.tmp = take(N * std::max({m_.d_model, dc_, dq_}));
    return w;
  }

  // One token's packed row: [q heads (hs | r) | k heads (hs | shared r) | v heads (hs)].
  void pack(T* qkv, const Work& w, int N) const {
    for (int n = 0; n < N; n++) {
      T* row = qkv + std::size_t(n) * row_;
      for (int h = 0; h < H_; h++) {
        T* q = row + h * dk_;
        T* k = row + (H_ + h) * dk_;
        std::copy_n(w.q_c + std::size_t(n) * H_ * hs_ + h * hs_, hs_, q);
        std::copy_n(w.q_r + std::size_t(n) * H_ * r_ + h * r_, r_, q + hs_);
        std::copy_n(w.k_c + std::size_t(n) * H_ * hs_ + h * hs_, hs_, k);
        std::copy_n(w.k_r + std::size_t(n) * r_, r_, k + hs_);
        std::copy_n(w.v + std::size_t(n) * H_ * hs_ + h * hs_, hs_, row + 2 * H_ * dk_ + h * hs_);
      }
    }
  }

  // The inverse of pack for gradients; the shared rotary key sums its heads' gradients.
  void unpack_gradients(const Work& w, int N) const {
    for (int n = 0; n < N; n++) {
      const T* row = w.qkv + std::size_t(n) * row_;
      T* dkr = w.k_r + std::size_t(n) * r_;
      std::fill_n(dkr, r_, T(0));
      for (int h = 0; h < H_; h++) {
        const T* q = row + h * dk_;
        const T* k = row + (H_ + h) * dk_;
        std::copy_n(q, hs_, w.q_c + std::size_t(n) * H_ * hs_ + h * hs_);
        std::copy_n(q + hs_, r_, w.q_r + std::size_t(n) * H_ * r_ + h * r_);
        std::copy_n(k, hs_, w.k_c + std::size_t(n) * H_ * hs_ + h * hs_);
        for (int i = 0; i < r_; i++) dkr[i] += k[hs_ + i];
        std::copy_n(row + 2 * H_ * dk_ + h * hs_, hs_, w.v + std::size_t(n) * H_ * hs_ + h * hs_);
      }
    }
  }

  AttentionShape shape(int B) const { return {B, m_.seq_len, H_, H_, dk_, hs_}; }

  ModelConfig m_;
  int H_, hs_, r_, dc_, dq_, qin_, dk_, row_;
  std::size_t w_dq_, w_uq_, w_qr_, w_dkv_, w_uk_, w_uv_, w_kr_, c_q_, c_kv_, qkv_, lse_;
};

}  // namespace

template <class T>
std::unique_ptr<AttentionMixer<T>> make_mla_mixer(const ModelConfig& m, int layer, int max_batch,
                                                  ArenaLayout& params, ArenaLayout& acts) {
  return std::make_unique<MlaMixer<T>>(m, layer, max_batch, params, acts);
}
template std::unique_ptr<AttentionMixer<float>> make_mla_mixer<float>(const ModelConfig&, int, int,
                                                                      ArenaLayout&, ArenaLayout&);
template std::unique_ptr<AttentionMixer<double>> make_mla_mixer<double>(const ModelConfig&, int,
                                                                        int, ArenaLayout&,
                                                                        ArenaLayout&);

AttentionCost mla_cost(const ModelConfig& m) {
  const double C = m.d_model, H = m.n_heads, hs = m.head_dim(), r = m.mla_rope_dim,
               dc = m.mla_kv_latent, dq = m.mla_q_latent, qin = dq > 0 ? dq : C;
  AttentionCost c;
  c.matmul_weights = dq * C + qin * H * (hs + r) + dc * C + 2 * dc * H * hs + r * C;
  c.attention_flops_per_token = 2.0 * H * ((hs + r) + hs) * mean_visible_keys(m.seq_len, 0);
  c.kv_cache_elems_per_token = dc + r;
  return c;
}

}  // namespace ellm
