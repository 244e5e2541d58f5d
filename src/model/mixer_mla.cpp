// Multi-head latent attention (DeepSeek-V2, arXiv 2405.04434), with decoupled RoPE:
//   c_kv = W_dkv x            (d_c)        the only per-token state the KV cache keeps,
//   k_c  = W_uk c_kv, v = W_uv c_kv        (H·hs each),
//   c_q  = W_dq x (or x when mla_q_latent = 0),  q_c = W_uq c_q,  q_r = RoPE(W_qr c_q) per head,
//   k_r  = RoPE(W_kr x)       (r, one rotary key shared by every head),
//   head h attends with q = [q_c,h ; q_r,h], k = [k_c,h ; k_r] (dk = hs + r) over v_h (dv = hs).
// The cache holds c_kv and k_r: d_c + r values per token per layer. Training materialises k_c and
// v; cached decoding (core_forward_chunk) absorbs W_uk and W_uv and attends over the latents.
//
// Tensor parallelism: a rank computes H/tp heads. The up-projections (W_uq, W_qr, W_uk, W_uv)
// are column-parallel over heads; the down-projections (W_dq, W_dkv) and the shared rotary key
// (W_kr) are held whole by every rank, which computes the whole latents and, from its heads
// alone, part of their gradients (declared partial, summed after backward) — Megatron-Core's MLA
// keeps them "duplicated" in the same way.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "kernels/gemm.hpp"

#include "layers/attention.hpp"
#include "layers/rope.hpp"
#include "model/token_mixer.hpp"

namespace ellm {
namespace {
using namespace layers;

template <class T>
class MlaMixer final : public AttentionMixer<T> {
 public:
  MlaMixer(const ModelConfig& m, int max_batch, const Declarer& d, const TensorParallel<T>& tensor_parallel)
      : m_(m),
        H_(m.n_heads / tensor_parallel.shard.size),
        hs_(m.head_dim()),
        r_(m.mla_rope_dim),
        dc_(m.mla_kv_latent),
        dq_(m.mla_q_latent),
        qin_(dq_ > 0 ? dq_ : m.d_model),
        dk_(hs_ + r_),
        row_(2 * H_ * dk_ + H_ * hs_) {
    const TpShard tp = tensor_parallel.shard;
    const int C = m.d_model, N = max_batch * m.seq_len, H = m.n_heads;
    const bool partial = tp.size > 1;
    const Init init = Init::normal(m.init_std);
    const Shard heads_hs = tp.along(0, {{0, H * hs_}}), heads_r = tp.along(0, {{0, H * r_}});
    if (dq_ > 0) w_dq_.declare(d, C, {weight("mla.w_dq", {dq_, C}, init).partial(partial)});
    w_uq_.declare(d, qin_, {weight("mla.w_uq", {H * hs_, qin_}, init).sharded(heads_hs)});
    w_qr_.declare(d, qin_, {weight("mla.w_qr", {H * r_, qin_}, init).sharded(heads_r)});
    w_dkv_.declare(d, C, {weight("mla.w_dkv", {dc_, C}, init).partial(partial)});
    w_uk_.declare(d, dc_, {weight("mla.w_uk", {H * hs_, dc_}, init).sharded(heads_hs)});
    w_uv_.declare(d, dc_, {weight("mla.w_uv", {H * hs_, dc_}, init).sharded(heads_hs)});
    w_kr_.declare(d, C, {weight("mla.w_kr", {r_, C}, init).partial(partial)});
    c_q_ = dq_ > 0 ? d.buffer("mla.c_q", {N, dq_}) : kAbsent;
    c_kv_ = d.buffer("mla.c_kv", {N, dc_});
    qkv_ = d.buffer("mla.qkv", {N, row_});  // packed, after RoPE
    lse_ = d.buffer("mla.lse", {max_batch, H_, m.seq_len});
    this->declare_output(d, m, H_ * hs_, max_batch, tp);
  }

 private:
  std::size_t core_scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * m_.seq_len;
    return N * (row_ + 3 * H_ * hs_ + H_ * r_ + r_ + dc_ + dq_);
  }

  void core_forward(const Arenas<T>& a, const T* x, T* y, int B) override {
    const int N = B * m_.seq_len;
    const Work w = work(a.scratch, B);
    const T* cq = x;
    if (dq_ > 0) {
      w_dq_.forward(a, x, a.a(c_q_), N);  // (N,d_c')
      cq = a.a(c_q_);
    }
    w_uq_.forward(a, cq, w.q_c, N);  // (N,H·hs)
    w_qr_.forward(a, cq, w.q_r, N);  // (N,H·r)
    rope_forward(w.q_r, B, m_.seq_len, H_ * r_, H_, r_, r_, m_.rope_base);
    w_dkv_.forward(a, x, a.a(c_kv_), N);     // (N,d_c)
    w_uk_.forward(a, a.a(c_kv_), w.k_c, N);  // (N,H·hs)
    w_uv_.forward(a, a.a(c_kv_), w.v, N);    // (N,H·hs)
    w_kr_.forward(a, x, w.k_r, N);           // (N,r)
    rope_forward(w.k_r, B, m_.seq_len, r_, 1, r_, r_, m_.rope_base);
    pack(a.a(qkv_), w, N);
    attention_forward(y, a.a(lse_), a.a(qkv_), shape(B));
  }

  void core_backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx, int B) override {
    const int N = B * m_.seq_len;
    const Work w = work(a.scratch, B);  // the per-part buffers now hold gradients
    std::fill(w.qkv, w.qkv + std::size_t(N) * row_, T(0));
    attention_backward(w.qkv, dy, y, a.a(lse_), a.a(qkv_), shape(B));
    unpack_gradients(w, N);
    rope_backward(w.q_r, B, m_.seq_len, H_ * r_, H_, r_, r_, m_.rope_base);
    rope_backward(w.k_r, B, m_.seq_len, r_, 1, r_, r_, m_.rope_base);
    // keys and values come from the latent: d c_kv = (dk_c) W_uk + (dv) W_uv
    w_uk_.backward(a, w.dc_kv, w.k_c, a.a(c_kv_), N);
    w_uv_.backward_accumulate(a, w.dc_kv, w.v, a.a(c_kv_), N);
    w_dkv_.backward(a, dx, w.dc_kv, x, N);
    w_kr_.backward_accumulate(a, dx, w.k_r, x, N);
    // queries: through the query latent when there is one
    if (dq_ > 0) {
      w_uq_.backward(a, w.dc_q, w.q_c, a.a(c_q_), N);
      w_qr_.backward_accumulate(a, w.dc_q, w.q_r, a.a(c_q_), N);
      w_dq_.backward_accumulate(a, dx, w.dc_q, x, N);
    } else {
      w_uq_.backward_accumulate(a, dx, w.q_c, x, N);
      w_qr_.backward_accumulate(a, dx, w.q_r, x, N);
    }
  }

  // Views into the workspace: forward's projections, then backward's gradients of the same.
  struct Work {
    T *qkv, *q_c, *q_r, *k_c, *k_r, *v, *dc_kv, *dc_q;
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

  // The latent cache: per token [c_kv (d_c) | k_r (r)], d_c + r values (mla_cost's cache).
  struct Cache final : MixerCache {
    int cap;
    std::vector<T> rows;  // (B, cap, d_c + r)
    std::vector<T> work;  // the chunk's projections, grown on demand
  };
  std::unique_ptr<MixerCache> make_cache(int B, int max_len) const override {
    auto c = std::make_unique<Cache>();
    c->cap = max_len;
    c->rows.assign(std::size_t(B) * max_len * (dc_ + r_), T(0));
    return c;
  }

  // Decoding with W_uk and W_uv absorbed (DeepSeek-V2 §2.1.2): head h's score of key j is
  // q_c,h·(W_uk,h c_j) + q_r,h·k_r,j = [W_uk,hᵀ q_c,h ; q_r,h]·[c_j ; k_r,j], and its output
  // W_uv,h Σ_j p_j c_j — attention over the latent rows themselves, one shared "kv head" of
  // key size d_c + r and value size d_c, at the training scale 1/sqrt(hs + r). The keys and
  // values are never materialised; W_uk and W_uv are read as they are (fp32).
  void core_forward_chunk(const Arenas<T>& a, const T* x, T* y, int B, int c, int pos0,
                          MixerCache& mc) override {
    Cache& cache = static_cast<Cache&>(mc);
    const int N = B * c, ld = dc_ + r_, qw = H_ * ld;
    cache.work.resize(std::size_t(N) * (H_ * hs_ + H_ * r_ + dc_ + r_ + qw + H_ * dc_));
    T* p = cache.work.data();
    const auto take = [&p](std::size_t n) { return std::exchange(p, p + n); };
    T *q_c = take(std::size_t(N) * H_ * hs_), *q_r = take(std::size_t(N) * H_ * r_),
      *c_kv = take(std::size_t(N) * dc_), *k_r = take(std::size_t(N) * r_),
      *q_abs = take(std::size_t(N) * qw), *o_lat = take(std::size_t(N) * H_ * dc_);
    const T* cq = x;
    if (dq_ > 0) {
      w_dq_.forward(a, x, a.a(c_q_), N);  // (N,d_c')
      cq = a.a(c_q_);
    }
    w_uq_.forward(a, cq, q_c, N);  // (N,H·hs)
    w_qr_.forward(a, cq, q_r, N);  // (N,H·r)
    rope_forward(q_r, B, c, H_ * r_, H_, r_, r_, m_.rope_base, pos0);
    w_dkv_.forward(a, x, c_kv, N);  // (N,d_c)
    w_kr_.forward(a, x, k_r, N);    // (N,r)
    rope_forward(k_r, B, c, r_, 1, r_, r_, m_.rope_base, pos0);
    const T *W_uk = a.p(w_uk_.w), *W_uv = a.p(w_uv_.w);  // (H·hs, d_c) each
    for (int h = 0; h < H_; h++) {  // q_abs[:, h] = [q_c,h W_uk,h | q_r,h]
      kernels::gemm<T>(false, false, N, dc_, hs_, T(1), q_c + h * hs_, H_ * hs_,
                       W_uk + std::size_t(h) * hs_ * dc_, dc_, T(0), q_abs + h * ld, qw);
      for (int n = 0; n < N; n++) {
        std::copy_n(q_r + std::size_t(n) * H_ * r_ + h * r_, r_, q_abs + std::size_t(n) * qw + h * ld + dc_);
      }
    }
    const AttentionShape s{B, c, H_, 1, ld, dc_};
    const T scale = T(1) / std::sqrt(T(dk_));
    for (int b = 0; b < B; b++) {
      T* seq = cache.rows.data() + std::size_t(b) * cache.cap * ld;  // (cap, d_c + r)
      for (int i = 0; i < c; i++) {
        const std::size_t n = std::size_t(b) * c + i;
        T* row = seq + std::size_t(pos0 + i) * ld;
        std::copy_n(c_kv + n * dc_, dc_, row);
        std::copy_n(k_r + n * r_, r_, row + dc_);
        attention_decode(o_lat + n * H_ * dc_, q_abs + n * qw, seq, ld, cache.cap, 0, pos0 + i, scale, s);
      }
    }
    for (int h = 0; h < H_; h++) {  // y[:, h] = o_lat,h W_uv,hᵀ
      kernels::gemm<T>(false, true, N, hs_, dc_, T(1), o_lat + h * dc_, H_ * dc_,
                       W_uv + std::size_t(h) * hs_ * dc_, dc_, T(0), y + h * hs_, H_ * hs_);
    }
  }

  ModelConfig m_;
  int H_, hs_, r_, dc_, dq_, qin_, dk_, row_;
  ColumnParallelLinear<T> w_dq_, w_uq_, w_qr_, w_dkv_, w_uk_, w_uv_, w_kr_;
  std::size_t c_q_, c_kv_, qkv_, lse_;
};

}  // namespace

template <class T>
std::unique_ptr<TokenMixer<T>> make_mla_mixer(const ModelConfig& m, int max_batch, const Declarer& d,
                                              const TensorParallel<T>& tp) {
  return std::make_unique<MlaMixer<T>>(m, max_batch, d, tp);
}
template std::unique_ptr<TokenMixer<float>> make_mla_mixer<float>(const ModelConfig&, int,
                                                                  const Declarer&,
                                                                  const TensorParallel<float>&);
template std::unique_ptr<TokenMixer<double>> make_mla_mixer<double>(const ModelConfig&, int,
                                                                    const Declarer&,
                                                                    const TensorParallel<double>&);

ModuleCost mla_cost(const ModelConfig& m) {
  const double C = m.d_model, H = m.n_heads, hs = m.head_dim(), r = m.mla_rope_dim,
               dc = m.mla_kv_latent, dq = m.mla_q_latent, qin = dq > 0 ? dq : C;
  ModuleCost c;
  c.matmul_weights = dq * C + qin * H * (hs + r) + dc * C + 2 * dc * H * hs + r * C;
  c.other_flops_per_token = 2.0 * H * ((hs + r) + hs) * mean_visible_keys(m.seq_len, 0);
  c.cache_elems_per_token = dc + r;
  return c;
}

}  // namespace ellm
