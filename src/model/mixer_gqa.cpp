// Grouped-query attention: one projection to [q (H heads) | k (Hkv heads) | v (Hkv heads)],
// optional RoPE on the first rotary_dim dimensions of q and k, then the tiled causal kernel
// (optionally windowed, optionally with ALiBi biases). MHA is Hkv = H, MQA is Hkv = 1; the KV
// cache holds 2·Hkv·hs values per token.
//
// Tensor parallelism (column-parallel): a rank computes H/tp query heads. With Hkv ≥ tp it also
// owns Hkv/tp kv heads; with Hkv < tp it keeps the one kv head its query heads read, replicated
// on the tp/Hkv ranks of its group: each computes part of that head's gradient (declared
// partial, summed over the ranks holding it after backward).
#include <algorithm>
#include <cmath>
#include <vector>

#include "layers/attention.hpp"
#include "layers/rope.hpp"
#include "model/token_mixer.hpp"
#include "util/phases.hpp"

namespace ellm {
namespace {
using namespace layers;

template <class T>
class GqaMixer final : public AttentionMixer<T> {
 public:
  GqaMixer(const ModelConfig& m, int max_batch, const Declarer& d, const TensorParallel<T>& tensor_parallel)
      : m_(m),
        H_(m.n_heads / tensor_parallel.shard.size),
        Hkv_(tensor_parallel.shard.size > m.kv_heads() ? 1 : m.kv_heads() / tensor_parallel.shard.size),
        hs_(m.head_dim()),
        row_((H_ + 2 * Hkv_) * hs_) {
    const TpShard tp = tensor_parallel.shard;
    const int N = max_batch * m.seq_len, H = m.n_heads, Hkv = m.kv_heads(), hs = hs_, C = m.d_model;
    // This rank's query heads, and the keys and values of its kv heads. q and kv are separate
    // tensors (their replication differs) but adjacent, so one GEMM computes [q | k | v].
    const Shard q_rows = tp.along(0, {{0, H * hs}});
    Shard kv_rows = tp.along(0, {{0, Hkv * hs}, {Hkv * hs, Hkv * hs}});
    const bool kv_replicated = tp.size > Hkv;
    if (kv_replicated) {
      const int g = tp.part(H).first / (H / Hkv);  // the kv head this rank's query heads read
      kv_rows = {0, {{g * hs, (g + 1) * hs}, {(Hkv + g) * hs, (Hkv + g + 1) * hs}}, tp.size / Hkv};
    }
    const Init init = Init::normal(m.init_std);
    std::vector<TensorDecl> biases;  // none when the model has no q, k, v biases (Llama)
    if (m.qkv_bias()) {
      biases.push_back(bias("q.b", {H * hs}).sharded(q_rows));
      biases.push_back(bias("kv.b", {2 * Hkv * hs}).sharded(kv_rows).partial(kv_replicated));
    }
    qkv_.declare(d, C,
                 {weight("q.w", {H * hs, C}, init).sharded(q_rows),
                  weight("kv.w", {2 * Hkv * hs, C}, init).sharded(kv_rows).partial(kv_replicated)},
                 std::move(biases));
    const std::size_t q_w = qkv_.w, kv_w = q_w + std::size_t(H_) * hs * C;  // adjacent tensors
    qkv_.adapt(d, m.finetune,
               {{"q", q_w, 0, 0, H * hs, tp.along(0, {{0, H * hs}})},
                {"k", kv_w, 0, H_ * hs, Hkv * hs, tp.along(0, {{0, Hkv * hs}})},
                {"v", kv_w, Hkv_ * hs, (H_ + Hkv_) * hs, Hkv * hs, tp.along(0, {{0, Hkv * hs}}), Hkv * hs}},
               N);
    qkv_buf_ = d.buffer("qkv", {N, row_});  // q and k after RoPE
    lse_ = d.buffer("lse", {max_batch, H_, m.seq_len});
    if (m.positions == Positions::ALiBi) {  // the slopes of this rank's heads
      std::vector<double> all(H);
      alibi_slopes(H, all.data());
      const auto [first, last] = tp.part(H);
      slopes_.assign(all.begin() + first, all.begin() + last);
    }
    this->declare_output(d, m, H_ * hs_, max_batch, tp);
  }

 private:
  std::size_t core_scratch_elems(int B) const override { return std::size_t(B) * m_.seq_len * row_; }

  void core_forward(const Arenas<T>& a, const T* x, T* y, int B) override {
    const int N = B * m_.seq_len;
    T* qkv = a.a(qkv_buf_);
    qkv_.forward(a, x, qkv, N);  // (N,row)
    if (m_.positions == Positions::RoPE) {
      rope_forward(qkv, B, m_.seq_len, row_, H_ + Hkv_, hs_, m_.rotary_dim(), m_.rope_base);
    }
    attention_forward(y, a.a(lse_), qkv, shape(B));  // (N, H·hs)
  }

  void core_backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx, int B) override {
    const int N = B * m_.seq_len;
    T* dqkv = a.scratch;  // (N,row)
    {
      const PhaseScope phase(Phase::attention);  // attention_backward adds into dqkv
      std::fill(dqkv, dqkv + std::size_t(N) * row_, T(0));
    }
    attention_backward(dqkv, dy, y, a.a(lse_), a.a(qkv_buf_), shape(B));
    if (m_.positions == Positions::RoPE) {
      rope_backward(dqkv, B, m_.seq_len, row_, H_ + Hkv_, hs_, m_.rotary_dim(), m_.rope_base);
    }
    qkv_.backward(a, dx, dqkv, x, N);
  }

  // The KV cache: per sequence `cap` rows of [k (Hkv·hs) | v (Hkv·hs)], token j in row j mod cap
  // (a ring of `window` rows under a sliding window: older keys are never read again).
  struct Cache final : MixerCache {
    int cap;
    std::vector<T> kv;  // (B, cap, 2·Hkv·hs)
  };
  std::unique_ptr<MixerCache> make_cache(int B, int max_len) const override {
    auto c = std::make_unique<Cache>();
    c->cap = m_.window > 0 ? std::min(m_.window, max_len) : max_len;
    c->kv.assign(std::size_t(B) * c->cap * 2 * Hkv_ * hs_, T(0));
    return c;
  }

  // Token by token within the chunk: its key and value go into the ring, then its query attends,
  // so a chunk longer than the window never overwrites a key an earlier query still needs.
  void core_forward_chunk(const Arenas<T>& a, const T* x, T* y, int B, int c, int pos0,
                          MixerCache& mc) override {
    Cache& cache = static_cast<Cache&>(mc);
    const int ld = 2 * Hkv_ * hs_;
    T* qkv = a.a(qkv_buf_);
    qkv_.forward(a, x, qkv, B * c);  // (B·c,row)
    if (m_.positions == Positions::RoPE) {
      rope_forward(qkv, B, c, row_, H_ + Hkv_, hs_, m_.rotary_dim(), m_.rope_base, pos0);
    }
    const AttentionShape s = shape(B);
    for (int b = 0; b < B; b++) {
      T* seq = cache.kv.data() + std::size_t(b) * cache.cap * ld;  // (cap, ld)
      for (int i = 0; i < c; i++) {
        const int p = pos0 + i;
        const T* row = qkv + (std::size_t(b) * c + i) * row_;
        std::copy_n(row + H_ * hs_, ld, seq + std::size_t(p % cache.cap) * ld);
        attention_decode(y + (std::size_t(b) * c + i) * H_ * hs_, row, seq, ld, cache.cap,
                         Hkv_ * hs_, p, T(1) / std::sqrt(T(hs_)), s);
      }
    }
  }

  void core_for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& f) const override {
    f(qkv_.adapter);
  }

  AttentionShape shape(int B) const {
    return {B,   m_.seq_len, H_,        Hkv_,
            hs_, hs_,        m_.window, slopes_.empty() ? nullptr : slopes_.data()};
  }

  ModelConfig m_;
  int H_, Hkv_, hs_, row_;
  ColumnParallelLinear<T> qkv_;
  std::size_t qkv_buf_, lse_;
  std::vector<double> slopes_;
};

}  // namespace

template <class T>
std::unique_ptr<TokenMixer<T>> make_gqa_mixer(const ModelConfig& m, int max_batch, const Declarer& d,
                                              const TensorParallel<T>& tp) {
  return std::make_unique<GqaMixer<T>>(m, max_batch, d, tp);
}
template std::unique_ptr<TokenMixer<float>> make_gqa_mixer<float>(const ModelConfig&, int,
                                                                  const Declarer&,
                                                                  const TensorParallel<float>&);
template std::unique_ptr<TokenMixer<double>> make_gqa_mixer<double>(const ModelConfig&, int,
                                                                    const Declarer&,
                                                                    const TensorParallel<double>&);

ModuleCost gqa_cost(const ModelConfig& m) {
  const double H = m.n_heads, Hkv = m.kv_heads(), hs = m.head_dim();
  ModuleCost c;
  c.matmul_weights = (H + 2 * Hkv) * hs * m.d_model;
  c.other_flops_per_token = 2.0 * H * (hs + hs) * mean_visible_keys(m.seq_len, m.window);
  c.cache_elems_per_token = 2 * Hkv * hs;
  return c;
}

}  // namespace ellm
