// Grouped-query attention: one projection to [q (H heads) | k (Hkv heads) | v (Hkv heads)],
// optional RoPE on q and k, then the tiled causal kernel (optionally windowed, optionally with
// ALiBi biases). MHA is Hkv = H, MQA is Hkv = 1; the KV cache holds 2·Hkv·hs values per token.
//
// Tensor parallelism (column-parallel): a rank computes H/tp query heads. With Hkv ≥ tp it also
// owns Hkv/tp kv heads; with Hkv < tp it keeps the one kv head its query heads read, replicated
// on the tp/Hkv ranks of its group, whose partial gradients are summed after backward.
#include <algorithm>
#include <vector>

#include "layers/attention.hpp"
#include "layers/linear.hpp"
#include "layers/rope.hpp"
#include "model/mixer.hpp"

namespace ellm {
namespace {
using namespace layers;

template <class T>
class GqaMixer final : public AttentionMixer<T> {
 public:
  GqaMixer(const ModelConfig& m, int layer, int max_batch, ArenaLayout& params, ArenaLayout& acts,
           const TensorParallel<T>& tensor_parallel)
      : m_(m),
        tp_(tensor_parallel),
        kv_replicated_(tp_.shard.size > m.kv_heads()),
        H_(m.n_heads / tp_.shard.size),
        Hkv_(kv_replicated_ ? 1 : m.kv_heads() / tp_.shard.size),
        hs_(m.head_dim()),
        row_((H_ + 2 * Hkv_) * hs_) {
    const TpShard tp = tp_.shard;
    const std::string pre = "h." + std::to_string(layer) + ".attn.";
    const int N = max_batch * m.seq_len, H = m.n_heads, Hkv = m.kv_heads(), hs = hs_;
    // This rank's query heads, and the keys and values of its kv heads. q and kv are separate
    // tensors (their replication differs) but adjacent, so one GEMM computes [q | k | v].
    const Shard q_rows = tp.along(0, {{0, H * hs}});
    Shard kv_rows = tp.along(0, {{0, Hkv * hs}, {Hkv * hs, Hkv * hs}});
    if (kv_replicated_) {
      kv_group_ = tp.part(H).first / (H / Hkv);
      const int g = kv_group_;
      kv_rows = {0, {{g * hs, (g + 1) * hs}, {(Hkv + g) * hs, (Hkv + g + 1) * hs}}, tp.size / Hkv};
    }
    q_w_ = params.add(pre + "q.w", {H * hs, m.d_model}, true, layer, q_rows);
    kv_w_ = params.add(pre + "kv.w", {2 * Hkv * hs, m.d_model}, true, layer, kv_rows);
    q_b_ = params.add(pre + "q.b", {H * hs}, false, layer, q_rows);
    kv_b_ = params.add(pre + "kv.b", {2 * Hkv * hs}, false, layer, kv_rows);
    qkv_ = acts.add(pre + "qkv", {N, row_}, false, layer);  // q and k after RoPE
    lse_ = acts.add(pre + "lse", {max_batch, H_, m.seq_len}, false, layer);
    if (m.positions == Positions::ALiBi) {  // the slopes of this rank's heads
      std::vector<double> all(H);
      alibi_slopes(H, all.data());
      const auto [first, last] = tp.part(H);
      slopes_.assign(all.begin() + first, all.begin() + last);
    }
  }

  int width() const override { return H_ * hs_; }
  std::size_t scratch_elems(int B) const override { return std::size_t(B) * m_.seq_len * row_; }

  void forward(const Arenas<T>& a, const T* x, T* y, int B) override {
    const int N = B * m_.seq_len;
    T* qkv = a.a(qkv_);
    // q.w/kv.w and q.b/kv.b are adjacent: one (row, C) weight and one (row) bias
    linear_forward(qkv, x, a.p(q_w_), a.p(q_b_), N, m_.d_model, row_);  // (N,row)
    if (m_.positions == Positions::RoPE)
      rope_forward(qkv, B, m_.seq_len, row_, H_ + Hkv_, hs_, m_.rope_base);
    attention_forward(y, a.a(lse_), qkv, shape(B));  // (N, H·hs)
  }

  void backward(const Arenas<T>& a, const T* x, const T* y, const T* dy, T* dx, int B) override {
    const int N = B * m_.seq_len;
    T* dqkv = a.scratch;  // (N,row)
    std::fill(dqkv, dqkv + std::size_t(N) * row_, T(0));
    attention_backward(dqkv, dy, y, a.a(lse_), a.a(qkv_), shape(B));
    if (m_.positions == Positions::RoPE)
      rope_backward(dqkv, B, m_.seq_len, row_, H_ + Hkv_, hs_, m_.rope_base);
    if (kv_replicated_) remember_kv_grads(a);
    linear_backward(dx, a.g(q_w_), a.g(q_b_), dqkv, x, a.p(q_w_), N, m_.d_model, row_);
    if (kv_replicated_) sum_kv_grads_over_group(a);
  }

 private:
  AttentionShape shape(int B) const {
    return {B,   m_.seq_len, H_,        Hkv_,
            hs_, hs_,        m_.window, slopes_.empty() ? nullptr : slopes_.data()};
  }

  std::size_t kv_grad_elems() const { return std::size_t(2 * hs_) * (m_.d_model + 1); }

  // The kv weight and bias gradients, as one vector (weight rows, then bias).
  void copy_kv_grads(const Arenas<T>& a, T* out) const {
    const std::size_t w = std::size_t(2 * hs_) * m_.d_model;
    std::copy_n(a.g(kv_w_), w, out);
    std::copy_n(a.g(kv_b_), 2 * hs_, out + w);
  }
  void remember_kv_grads(const Arenas<T>& a) {
    kv_before_.resize(kv_grad_elems());
    copy_kv_grads(a, kv_before_.data());
  }
  // Each rank of a group saw only its own query heads: the kv gradient of this backward is the
  // sum over the group. Every rank puts its contribution in its group's slot of one buffer, the
  // tensor-parallel all-reduce sums the slots, and each rank takes back its group's slot.
  void sum_kv_grads_over_group(const Arenas<T>& a) {
    const std::size_t n = kv_grad_elems();
    std::vector<T>& slots = kv_slots_;
    slots.assign(n * m_.kv_heads(), T(0));
    T* mine = slots.data() + n * kv_group_;
    copy_kv_grads(a, mine);
    for (std::size_t i = 0; i < n; i++) mine[i] -= kv_before_[i];
    tp_.all_reduce_sum(slots.data(), slots.size());
    const std::size_t w = std::size_t(2 * hs_) * m_.d_model;
    T* gw = a.g(kv_w_);
    T* gb = a.g(kv_b_);
    for (std::size_t i = 0; i < w; i++) gw[i] = kv_before_[i] + mine[i];
    for (int i = 0; i < 2 * hs_; i++) gb[i] = kv_before_[w + i] + mine[w + i];
  }

  ModelConfig m_;
  TensorParallel<T> tp_;
  bool kv_replicated_;
  int kv_group_ = 0;
  int H_, Hkv_, hs_, row_;
  std::size_t q_w_, kv_w_, q_b_, kv_b_, qkv_, lse_;
  std::vector<double> slopes_;
  std::vector<T> kv_before_, kv_slots_;
};

}  // namespace

template <class T>
std::unique_ptr<AttentionMixer<T>> make_gqa_mixer(const ModelConfig& m, int layer, int max_batch,
                                                  ArenaLayout& params, ArenaLayout& acts,
                                                  const TensorParallel<T>& tp) {
  return std::make_unique<GqaMixer<T>>(m, layer, max_batch, params, acts, tp);
}
template std::unique_ptr<AttentionMixer<float>> make_gqa_mixer<float>(
    const ModelConfig&, int, int, ArenaLayout&, ArenaLayout&, const TensorParallel<float>&);
template std::unique_ptr<AttentionMixer<double>> make_gqa_mixer<double>(
    const ModelConfig&, int, int, ArenaLayout&, ArenaLayout&, const TensorParallel<double>&);

AttentionCost gqa_cost(const ModelConfig& m) {
  const double H = m.n_heads, Hkv = m.kv_heads(), hs = m.head_dim();
  AttentionCost c;
  c.matmul_weights = (H + 2 * Hkv) * hs * m.d_model;
  c.attention_flops_per_token = 2.0 * H * (hs + hs) * mean_visible_keys(m.seq_len, m.window);
  c.kv_cache_elems_per_token = 2 * Hkv * hs;
  return c;
}

}  // namespace ellm
