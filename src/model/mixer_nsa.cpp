// Native sparse attention (Yuan et al., DeepSeek, arXiv 2502.11089). One query projection feeds
// three branches, each with its own keys and values, mixed per token and head by sigmoid gates:
//   cmp  attention over compressed tokens: token i = φ(raw keys / values [i·d, i·d + l)), for the
//        blocks wholly at or before the query (i·d + l − 1 ≤ t; none yet while t < l − 1: o = 0);
//   slc  attention over the raw tokens ≤ t of the top-n selection blocks of l' tokens, ranked by
//        the cmp probabilities summed over a GQA group (one selection per group); block 0 and the
//        two local blocks (t's and the one before) are always kept and count toward n;
//   win  sliding-window attention over the last w tokens (the tiled kernel);
//   y = g_cmp ⊙ o_cmp + g_slc ⊙ o_slc + g_win ⊙ o_win per head, g = sigmoid(W_g x + b_g) (N, 3·H):
//        the paper's gate MLP at its smallest, one linear layer.
// φ, one for keys and one for values, shared by the kv heads: the paper's "MLP with intra-block
// position encoding" made concrete as the smallest MLP that weighs every position of every channel,
//   φ(block) = W2 · GELU(W1 · flatten(block + pe) + b1) + b2,  pe (l, hs), W1 (hs, l·hs), W2 (hs, hs).
// φ_k has no b2: a bias shared by every compressed key adds the same q·b2 to all of a query's
// scores, which the softmax (and the selection built on it) ignores — its gradient would be
// rounding noise that AdamW turns into lr-sized steps.
// Positions: with RoPE, q, k_slc and k_win are rotated; the compressed keys are not (one key
// stands for l positions): they carry order through pe instead. Learned, sinusoidal and no
// positions need nothing here (the embedding adds them); ALiBi is refused by validation.
// Backward runs through the three branches, the gates, φ and every projection; the selected
// blocks are constants (top-n has no gradient), as in the paper.
// Tensor parallelism: a rank keeps G/tp whole kv groups and their H/tp query heads (every
// projection is column-parallel over them, the gates over heads), so the selection, which is per
// group, stays local. φ is shared by every kv head: each rank holds it whole and computes part of
// its gradient (declared partial, summed after backward).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kernels/vmath.hpp"
#include "layers/activation.hpp"
#include "layers/attention.hpp"
#include "layers/linear.hpp"
#include "layers/rope.hpp"
#include "layers/sparse_attention.hpp"
#include "model/token_mixer.hpp"

namespace ellm {
namespace {
using namespace layers;

// Compressed tokens a query at t sees: the blocks that end at or before it.
int compressed_visible(const ModelConfig& m, int t) {
  return t + 1 >= m.nsa_block ? (t + 1 - m.nsa_block) / m.nsa_stride + 1 : 0;
}

// Raw tokens ≤ t the selection branch reads: min(n, blocks so far) blocks, all whole but t's own.
int selected_tokens(const ModelConfig& m, int t) {
  const int ls = m.nsa_select_block, blocks = std::min(m.nsa_select_n, t / ls + 1);
  return (blocks - 1) * ls + t % ls + 1;
}

enum Branch { kCmp, kSlc, kWin };

template <class T>
class NsaMixer final : public AttentionMixer<T> {
 public:
  NsaMixer(const ModelConfig& m, int max_batch, const Declarer& decl, const TensorParallel<T>& tensor_parallel)
      : m_(m), H_(m.n_heads / tensor_parallel.shard.size), G_(m.kv_heads() / tensor_parallel.shard.size),
        hs_(m.head_dim()), nc_(compressed_visible(m, m.seq_len - 1)), qkv_row_((H_ + 2 * G_) * hs_),
        kv_row_(4 * G_ * hs_) {
    const TpShard tp = tensor_parallel.shard;
    const Declarer d = decl.sub("nsa.");
    const int C = m.d_model, N = max_batch * m.seq_len, M = max_batch * nc_ * G_, l = m.nsa_block;
    const int H = m.n_heads, G = m.kv_heads(), hs = hs_;
    const Init init = Init::normal(m.init_std);
    // [q | k_win | v_win], [k_slc | v_slc | k_cmp | v_cmp], [g_cmp | g_slc | g_win]: each segment
    // split over the ranks by heads (or kv groups).
    const Shard qkv_rows = tp.along(0, {{0, H * hs}, {H * hs, G * hs}, {(H + G) * hs, G * hs}});
    const Shard kv_rows = tp.along(0, {{0, G * hs}, {G * hs, G * hs}, {2 * G * hs, G * hs}, {3 * G * hs, G * hs}});
    const Shard gate_rows = tp.along(0, {{0, H}, {H, H}, {2 * H, H}});
    qkv_.declare(d, C, {weight("qkv.w", {(H + 2 * G) * hs, C}, init).sharded(qkv_rows)},
                 {bias("qkv.b", {(H + 2 * G) * hs}).sharded(qkv_rows)});
    kv_.declare(d, C, {weight("kv.w", {4 * G * hs, C}, init).sharded(kv_rows)},
                {bias("kv.b", {4 * G * hs}).sharded(kv_rows)});
    gate_.declare(d, C, {weight("gate.w", {3 * H, C}, init).sharded(gate_rows)},
                  {bias("gate.b", {3 * H}).sharded(gate_rows)});
    qkv_buf_ = d.buffer("qkv", {N, qkv_row_});  // after RoPE
    kv_buf_ = d.buffer("kv", {N, kv_row_});     // k_slc after RoPE
    gate_buf_ = d.buffer("gate", {N, 3 * H_});  // after the sigmoid
    const bool partial = tp.size > 1;
    for (int e = 0; e < 2; e++) {
      const std::string phi = e == 0 ? "phi_k." : "phi_v.";
      phi_[e].l1.declare(d, l * hs, {weight(phi + "w1", {hs, l * hs}, init).partial(partial)},
                         {bias(phi + "b1", {hs}).partial(partial)});
      std::vector<TensorDecl> b2;
      if (e == 1) b2.push_back(bias(phi + "b2", {hs}).partial(partial));
      phi_[e].l2.declare(d, hs, {weight(phi + "w2", {hs, hs}, init).partial(partial)}, std::move(b2));
      phi_[e].pe = d.param(weight(phi + "pe", {l, hs}, init).partial(partial));
      phi_[e].l1.served = phi_[e].l2.served = false;  // once per d tokens, small: inference keeps φ fp32
      hid_[e] = d.buffer(phi + "hid", {M, hs});  // before the GELU
      act_[e] = d.buffer(phi + "act", {M, hs});  // after it
      cmp_[e] = d.buffer(phi + "out", {M, hs});  // (B, nc, Hkv·hs)
    }
    const char* names[] = {"cmp", "slc", "win"};
    for (int c = 0; c < 3; c++) {
      o_[c] = d.buffer(std::string(names[c]) + ".out", {N, H_ * hs});
      lse_[c] = d.buffer(std::string(names[c]) + ".lse", {max_batch, H_, m.seq_len});
    }
    // Integer state beside the arena: the cmp branch's key prefixes (fixed) and forward's
    // selection, which backward reuses.
    cmp_keys_.resize(std::size_t(N) * G_);
    for (std::size_t i = 0; i < cmp_keys_.size(); i++) {
      cmp_keys_[i] = {0, compressed_visible(m, int(i / G_ % m.seq_len))};
    }
    slc_keys_.resize(std::size_t(N) * G_ * m.nsa_select_n);
    this->declare_output(decl, m, H_ * hs_, max_batch, tp);
  }

 private:
  std::size_t core_scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * m_.seq_len, M = std::size_t(B) * nc_ * G_;
    return M * (2 * m_.nsa_block * hs_ + 4 * hs_) +
           N * (H_ * hs_ + qkv_row_ + kv_row_ + 3 * H_);
  }

  void core_forward(const Arenas<T>& a, const T* x, T* y, int B) override {
    const int N = B * m_.seq_len;
    T *qkv = a.a(qkv_buf_), *kv = a.a(kv_buf_), *gate = a.a(gate_buf_);
    qkv_.forward(a, x, qkv, N);    // (N, [q|k_win|v_win])
    kv_.forward(a, x, kv, N);      // (N, [k|v_slc, k|v_cmp])
    gate_.forward(a, x, gate, N);  // (N, [cmp|slc|win] heads)
    for (std::size_t i = 0; i < std::size_t(N) * 3 * H_; i++) {
      gate[i] = T(1) / (T(1) + kernels::vexp(-gate[i]));
    }
    if (m_.positions == Positions::RoPE) {
      rope_forward(qkv, B, m_.seq_len, qkv_row_, H_ + G_, hs_, m_.rotary_dim(), m_.rope_base);  // q, k_win
      rope_forward(kv, B, m_.seq_len, kv_row_, G_, hs_, m_.rotary_dim(), m_.rope_base);         // k_slc
    }
    const Work w = work(a.scratch, B);
    for (int e = 0; e < 2; e++) compress_forward(a, w, e, B);
    sparse_attention_forward(a.a(o_[kCmp]), a.a(lse_[kCmp]), qkv, a.a(cmp_[0]), a.a(cmp_[1]),
                             cmp_keys_.data(), cmp_shape(B));
    select_blocks(a, B);
    sparse_attention_forward(a.a(o_[kSlc]), a.a(lse_[kSlc]), qkv, kv, kv + G_ * hs_, slc_keys_.data(),
                             slc_shape(B));
    attention_forward(a.a(o_[kWin]), a.a(lse_[kWin]), qkv, win_shape(B));
    mix(a, y, N);
  }

  // The cache (nsa_cost's): every past token's [k_slc (after RoPE) | v_slc] (any block may be
  // selected later), the compressed keys and values made so far, and two rings bounded per
  // sequence: the raw [k_cmp | v_cmp] of the last l tokens, which φ reads when a block fills, and
  // the window branch's [k_win | v_win] (as GQA's). Plus φ's per-block workspace.
  struct Cache final : MixerCache {
    int cap;                  // window ring rows: min(window, max_len)
    int len;                  // rows of sel per sequence: the context
    std::vector<T> sel;       // (B, max_len, 2·Hkv·hs)
    std::vector<T> pending;   // (B, l, 2·Hkv·hs), token j in row j mod l
    std::vector<T> cmp[2];    // (B, nc, Hkv·hs) compressed keys, values
    std::vector<T> ring;      // (B, cap, 2·Hkv·hs)
    std::vector<T> block, hid, act;  // φ of one block: (Hkv, l·hs), (Hkv, hs), (Hkv, hs)
    // one query's workspaces, sized once: (H) log-sum-exps, (Hkv) compressed and (Hkv, n)
    // selected key ranges, (nc) group probabilities, (blocks) scores and their order
    std::vector<T> lse, p_cmp, score;
    std::vector<KeyRange> cmp_keys, slc_keys;
    std::vector<int> order;
  };
  std::unique_ptr<MixerCache> make_cache(int B, int max_len) const override {
    auto c = std::make_unique<Cache>();
    const int nc = compressed_visible(m_, max_len - 1);
    c->cap = std::min(m_.nsa_window, max_len);
    c->len = max_len;
    c->sel.assign(std::size_t(B) * max_len * 2 * G_ * hs_, T(0));
    c->pending.assign(std::size_t(B) * m_.nsa_block * 2 * G_ * hs_, T(0));
    for (auto& v : c->cmp) v.assign(std::size_t(B) * nc * G_ * hs_, T(0));
    c->ring.assign(std::size_t(B) * c->cap * 2 * G_ * hs_, T(0));
    c->block.assign(std::size_t(G_) * m_.nsa_block * hs_, T(0));
    c->hid.assign(std::size_t(G_) * hs_, T(0));
    c->act.assign(std::size_t(G_) * hs_, T(0));
    c->lse.assign(H_, T(0));
    c->p_cmp.assign(std::max(nc, 1), T(0));
    c->score.assign(max_len / m_.nsa_select_block + 1, T(0));
    c->order.assign(c->score.size(), 0);
    c->cmp_keys.assign(G_, KeyRange{});
    c->slc_keys.assign(std::size_t(G_) * m_.nsa_select_n, KeyRange{});
    return c;
  }

  // Token by token within the chunk, as the whole-sequence forward computes each row: the
  // token's kv row joins the cache, a block that ends at it is compressed by φ, then its query
  // reads the three branches over what the cache holds (compressed tokens so far, the selected
  // blocks' raw tokens ≤ it, the window) and the gates mix them.
  void core_forward_chunk(const Arenas<T>& a, const T* x, T* y, int B, int c, int pos0,
                          MixerCache& mc) override {
    Cache& cache = static_cast<Cache&>(mc);
    const int N = B * c, ld = 2 * G_ * hs_;
    T *qkv = a.a(qkv_buf_), *kv = a.a(kv_buf_), *gate = a.a(gate_buf_);
    qkv_.forward(a, x, qkv, N);    // (N, [q|k_win|v_win])
    kv_.forward(a, x, kv, N);      // (N, [k|v_slc, k|v_cmp])
    gate_.forward(a, x, gate, N);  // (N, 3H)
    for (std::size_t i = 0; i < std::size_t(N) * 3 * H_; i++) gate[i] = T(1) / (T(1) + kernels::vexp(-gate[i]));
    if (m_.positions == Positions::RoPE) {
      rope_forward(qkv, B, c, qkv_row_, H_ + G_, hs_, m_.rotary_dim(), m_.rope_base, pos0);
      rope_forward(kv, B, c, kv_row_, G_, hs_, m_.rotary_dim(), m_.rope_base, pos0);
    }
    const int nc = int(cache.cmp[0].size() / (std::size_t(B) * G_ * hs_));
    for (int b = 0; b < B; b++) {
      T* sel = cache.sel.data() + std::size_t(b) * cache.len * ld;
      T* pending = cache.pending.data() + std::size_t(b) * m_.nsa_block * ld;
      T* ring = cache.ring.data() + std::size_t(b) * cache.cap * ld;
      for (int i = 0; i < c; i++) {
        const int p = pos0 + i;
        const std::size_t n = std::size_t(b) * c + i;
        const T* q = qkv + n * qkv_row_;
        std::copy_n(kv + n * kv_row_, ld, sel + std::size_t(p) * ld);
        std::copy_n(kv + n * kv_row_ + ld, ld, pending + std::size_t(p % m_.nsa_block) * ld);
        std::copy_n(q + H_ * hs_, ld, ring + std::size_t(p % cache.cap) * ld);
        const int visible = compressed_visible(m_, p);
        if (visible > 0 && (visible - 1) * m_.nsa_stride + m_.nsa_block - 1 == p) {
          for (int e = 0; e < 2; e++) compress_block(a, cache, pending, e, visible - 1, cache.cmp[e].data() + std::size_t(b) * nc * G_ * hs_);
        }
        T* out[3] = {a.a(o_[kCmp]) + n * H_ * hs_, a.a(o_[kSlc]) + n * H_ * hs_, a.a(o_[kWin]) + n * H_ * hs_};
        const T *kc = cache.cmp[0].data() + std::size_t(b) * nc * G_ * hs_, *vc = cache.cmp[1].data() + std::size_t(b) * nc * G_ * hs_;
        std::fill(cache.cmp_keys.begin(), cache.cmp_keys.end(), KeyRange{0, visible});
        const SparseShape cmp{1, 1, nc, H_, G_, hs_, qkv_row_, G_ * hs_, H_ * hs_, 1};
        sparse_attention_forward(out[kCmp], cache.lse.data(), q, kc, vc, cache.cmp_keys.data(), cmp);
        select_for_query(cache, q, kc, cmp, p);
        const SparseShape slc{1, 1, cache.len, H_, G_, hs_, qkv_row_, ld, H_ * hs_, m_.nsa_select_n};
        sparse_attention_forward(out[kSlc], cache.lse.data(), q, sel, sel + G_ * hs_, cache.slc_keys.data(), slc);
        attention_decode(out[kWin], q, ring, ld, cache.cap, G_ * hs_, p, T(1) / std::sqrt(T(hs_)), win_shape(B));
      }
    }
    mix(a, y, N);
  }

  // φ of compressed token i (keys e = 0, values e = 1) of every kv group from its block's raw
  // rows in the pending ring → out + i·Hkv·hs, as compress_forward computes it for the whole
  // sequence.
  void compress_block(const Arenas<T>& a, Cache& cache, const T* pending, int e, int i, T* out) const {
    const int l = m_.nsa_block, col = e * G_ * hs_, ld = 2 * G_ * hs_;
    const T* pe = a.p(phi_[e].pe);
    for (int g = 0; g < G_; g++) {
      for (int p = 0; p < l; p++) {
        const T* k = pending + std::size_t((i * m_.nsa_stride + p) % l) * ld + col + g * hs_;
        T* xrow = cache.block.data() + (std::size_t(g) * l + p) * hs_;
        for (int d = 0; d < hs_; d++) xrow[d] = k[d] + pe[p * hs_ + d];
      }
    }
    phi_[e].l1.forward(a, cache.block.data(), cache.hid.data(), G_);
    gelu_forward(cache.act.data(), cache.hid.data(), long(G_) * hs_);
    phi_[e].l2.forward(a, cache.act.data(), out + std::size_t(i) * G_ * hs_, G_);
  }

  // The selection of one query at position t into cache.slc_keys (select_blocks for one row):
  // per kv group, its top-n blocks by the compressed probabilities (cache.lse, cache.cmp_keys of
  // the cmp branch) summed over the group's heads.
  void select_for_query(Cache& cache, const T* q, const T* kc, const SparseShape& cmp, int t) const {
    const int ls = m_.nsa_select_block, n = m_.nsa_select_n, group = H_ / G_;
    const int blocks = t / ls + 1, k = std::min(n, blocks);
    for (int g = 0; g < G_; g++) {
      std::fill(cache.p_cmp.begin(), cache.p_cmp.end(), T(0));
      for (int h = g * group; h < (g + 1) * group; h++) {
        sparse_attention_add_probabilities(cache.p_cmp.data(), cache.lse.data(), q, kc, cache.cmp_keys.data(), cmp, 0, 0, h);
      }
      rank_blocks(cache.slc_keys.data() + std::size_t(g) * n, cache.score.data(), cache.order.data(),
                  cache.p_cmp.data(), t, blocks, k);
    }
  }

  void core_backward(const Arenas<T>& a, const T* x, const T*, const T* dy, T* dx, int B) override {
    const int N = B * m_.seq_len;
    const Work w = work(a.scratch, B);  // forward's φ input is dead: the space is reused
    const T *qkv = a.a(qkv_buf_), *kv = a.a(kv_buf_);
    std::fill(w.dqkv, w.dqkv + std::size_t(N) * qkv_row_, T(0));
    std::fill(w.dkv, w.dkv + std::size_t(N) * kv_row_, T(0));
    for (T* d : w.dcmp) std::fill(d, d + std::size_t(B) * nc_ * G_ * hs_, T(0));
    ungate(a, w, dy, kCmp, N);
    sparse_attention_backward(w.dqkv, w.dcmp[0], w.dcmp[1], w.dout, a.a(o_[kCmp]), a.a(lse_[kCmp]),
                              qkv, a.a(cmp_[0]), a.a(cmp_[1]), cmp_keys_.data(), cmp_shape(B));
    ungate(a, w, dy, kSlc, N);
    sparse_attention_backward(w.dqkv, w.dkv, w.dkv + G_ * hs_, w.dout, a.a(o_[kSlc]), a.a(lse_[kSlc]),
                              qkv, kv, kv + G_ * hs_, slc_keys_.data(), slc_shape(B));
    ungate(a, w, dy, kWin, N);
    attention_backward(w.dqkv, w.dout, a.a(o_[kWin]), a.a(lse_[kWin]), qkv, win_shape(B));
    for (int e = 0; e < 2; e++) compress_backward(a, w, e, B);
    if (m_.positions == Positions::RoPE) {
      rope_backward(w.dqkv, B, m_.seq_len, qkv_row_, H_ + G_, hs_, m_.rotary_dim(), m_.rope_base);
      rope_backward(w.dkv, B, m_.seq_len, kv_row_, G_, hs_, m_.rotary_dim(), m_.rope_base);
    }
    qkv_.backward(a, dx, w.dqkv, x, N);
    kv_.backward_accumulate(a, dx, w.dkv, x, N);
    gate_.backward_accumulate(a, dx, w.dgate, x, N);
  }

  struct Phi {
    ColumnParallelLinear<T> l1, l2;  // (hs, l·hs) + (hs), (hs, hs) + (hs)
    std::size_t pe;                  // (l, hs)
  };

  // Views into the workspace (M = B·nc·Hkv compressed tokens): forward uses only `blocks`.
  struct Work {
    T *blocks, *dblocks;  // (M, l·hs) φ's input (raw blocks + pe), then its gradient
    T *dhid, *dact;       // (M, hs) gradients of φ's hidden layer before and after the GELU
    T* dcmp[2];           // (M, hs) each: gradients of the compressed keys and values
    T* dout;              // (N, H·hs) one branch's output gradient
    T *dqkv, *dkv, *dgate;  // (N, qkv row), (N, kv row), (N, 3H) gradients of the projections
  };
  Work work(T* base, int B) const {
    const std::size_t N = std::size_t(B) * m_.seq_len, M = std::size_t(B) * nc_ * G_;
    T* p = base;
    const auto take = [&](std::size_t n) { T* out = p; p += n; return out; };
    Work w;
    w.blocks = take(M * m_.nsa_block * hs_);
    w.dblocks = take(M * m_.nsa_block * hs_);
    w.dhid = take(M * hs_);
    w.dact = take(M * hs_);
    w.dcmp[0] = take(M * hs_);
    w.dcmp[1] = take(M * hs_);
    w.dout = take(N * H_ * hs_);
    w.dqkv = take(N * qkv_row_);
    w.dkv = take(N * kv_row_);
    w.dgate = take(N * 3 * H_);
    return w;
  }

  // Calls f(block offset, kv offset, p) for position p of every compressed token's block: φ's
  // input row (b, i, g) holds at p·hs raw token i·d + p of sequence b, kv head g, whose k_cmp
  // (e = 0) or v_cmp (e = 1) sits at the kv offset.
  template <class F>
  void for_each_block_position(int B, int e, F&& f) const {
    const int l = m_.nsa_block, col = (2 + e) * G_ * hs_;
    for (int b = 0; b < B; b++) {
      for (int i = 0; i < nc_; i++) {
        for (int g = 0; g < G_; g++) {
          const std::size_t row = (std::size_t(b) * nc_ + i) * G_ + g;
          for (int p = 0; p < l; p++) {
            const std::size_t tok = std::size_t(b) * m_.seq_len + i * m_.nsa_stride + p;
            f((row * l + p) * hs_, tok * kv_row_ + col + g * hs_, p);
          }
        }
      }
    }
  }

  // φ's input X (M, l·hs): every compressed token's raw block plus pe, flattened. Rebuilt in
  // backward rather than saved (it is l/d times the raw keys' size).
  void gather_blocks(T* X, const Arenas<T>& a, int e, int B) const {
    const T *kv = a.a(kv_buf_), *pe = a.p(phi_[e].pe);
    for_each_block_position(B, e, [&](std::size_t xo, std::size_t ko, int p) {
      for (int c = 0; c < hs_; c++) X[xo + c] = kv[ko + c] + pe[p * hs_ + c];
    });
  }

  // φ of the keys (e = 0) or values (e = 1): cmp_[e] (M, hs), i.e. (B, nc, Hkv·hs).
  void compress_forward(const Arenas<T>& a, const Work& w, int e, int B) const {
    const int M = B * nc_ * G_;
    if (M == 0) return;  // sequences shorter than one block
    const Phi& f = phi_[e];
    gather_blocks(w.blocks, a, e, B);                                               // (M, l·hs)
    f.l1.forward(a, w.blocks, a.a(hid_[e]), M);                                       // (M, hs)
    gelu_forward(a.a(act_[e]), a.a(hid_[e]), long(M) * hs_);                          // (M, hs)
    f.l2.forward(a, a.a(act_[e]), a.a(cmp_[e]), M);                                   // (M, hs)
  }

  // From dcmp[e] (M, hs) into φ's parameters and the raw k_cmp / v_cmp columns of dkv.
  void compress_backward(const Arenas<T>& a, const Work& w, int e, int B) const {
    const int M = B * nc_ * G_;
    if (M == 0) return;
    const Phi& f = phi_[e];
    f.l2.backward(a, w.dact, w.dcmp[e], a.a(act_[e]), M);
    gelu_backward(w.dhid, a.a(hid_[e]), w.dact, long(M) * hs_);
    gather_blocks(w.blocks, a, e, B);
    f.l1.backward(a, w.dblocks, w.dhid, w.blocks, M);
    T* dpe = a.g(f.pe);
    for_each_block_position(B, e, [&](std::size_t xo, std::size_t ko, int p) {
      for (int c = 0; c < hs_; c++) {
        w.dkv[ko + c] += w.dblocks[xo + c];
        dpe[p * hs_ + c] += w.dblocks[xo + c];
      }
    });
  }

  // Eq. 9 of the paper: p_slc[j] = Σ_{m<l'/d} Σ_{n<l/d} p_cmp[·], over the `visible` compressed
  // tokens (others skipped). With 0-based indices we use (l'/d)·(j+1) − 1 − m − n: exactly the
  // compressed tokens whose blocks overlap selection block j (i·d < (j+1)·l' and i·d + l > j·l'),
  // with the paper's triangular weights. The paper's (l'/d)·j − m − n, read 0-based, would credit
  // tokens covering only block j−1 and miss the last one overlapping block j.
  void block_scores(T* p_slc, const T* p_cmp, int visible, int blocks) const {
    const int per_slc = m_.nsa_select_block / m_.nsa_stride, per_cmp = m_.nsa_block / m_.nsa_stride;
    for (int j = 0; j < blocks; j++) {
      T s = 0;
      for (int mi = 0; mi < per_slc; mi++) {
        for (int ni = 0; ni < per_cmp; ni++) {
          const int c = per_slc * (j + 1) - 1 - mi - ni;
          if (c >= 0 && c < visible) s += p_cmp[c];
        }
      }
      p_slc[j] = s;
    }
  }

  // slc_keys_ (B, T, Hkv, n): for every query and kv group, the key ranges ≤ t of its top-n
  // blocks in ascending order (unused slots empty). Block 0 and the two local blocks are forced in
  // with an infinite score; ties go to the earlier block.
  void select_blocks(const Arenas<T>& a, int B) {
    const int Tn = m_.seq_len, ls = m_.nsa_select_block, n = m_.nsa_select_n, group = H_ / G_;
    const SparseShape cmp = cmp_shape(B);
    // (nc) group probabilities, (blocks) scores, the blocks by score: sized once, kept
    std::vector<T>& p_cmp = p_cmp_;
    std::vector<T>& score = block_score_;
    std::vector<int>& order = block_order_;
    p_cmp.resize(nc_), score.resize(Tn / ls + 1), order.resize(score.size());
    for (int b = 0; b < B; b++) {
      for (int t = 0; t < Tn; t++) {
        const int blocks = t / ls + 1, k = std::min(n, blocks);  // blocks holding keys ≤ t
        for (int g = 0; g < G_; g++) {
          std::fill(p_cmp.begin(), p_cmp.end(), T(0));
          for (int h = g * group; h < (g + 1) * group; h++) {
            sparse_attention_add_probabilities(p_cmp.data(), a.a(lse_[kCmp]), a.a(qkv_buf_), a.a(cmp_[0]),
                                               cmp_keys_.data(), cmp, b, t, h);
          }
          rank_blocks(slc_keys_.data() + ((std::size_t(b) * Tn + t) * G_ + g) * n, score.data(),
                      order.data(), p_cmp.data(), t, blocks, k);
        }
      }
    }
  }

  // keys (n) ← the key ranges ≤ t of the top-k of `blocks` selection blocks scored from the
  // group's compressed probabilities p_cmp, ascending, unused slots empty. Block 0 and the two
  // local blocks are forced in with an infinite score; ties go to the earlier block.
  void rank_blocks(KeyRange* keys, T* score, int* order, const T* p_cmp, int t, int blocks, int k) const {
    const int ls = m_.nsa_select_block;
    block_scores(score, p_cmp, compressed_visible(m_, t), blocks);
    for (int j : {0, blocks - 2, blocks - 1}) {
      if (j >= 0) score[j] = std::numeric_limits<T>::infinity();
    }
    std::iota(order, order + blocks, 0);
    std::partial_sort(order, order + k, order + blocks, [&](int i, int j) {
      return score[i] > score[j] || (score[i] == score[j] && i < j);
    });
    std::sort(order, order + k);
    for (int s = 0; s < m_.nsa_select_n; s++) {
      keys[s] = s < k ? KeyRange{order[s] * ls, std::min(order[s] * ls + ls, t + 1)} : KeyRange{};
    }
  }

  // y (N, H·hs) = Σ_c g_c ⊙ o_c: one gate per token, head and branch.
  void mix(const Arenas<T>& a, T* y, int N) const {
    const T* gate = a.a(gate_buf_);
    const T *o0 = a.a(o_[kCmp]), *o1 = a.a(o_[kSlc]), *o2 = a.a(o_[kWin]);
    for (int n = 0; n < N; n++) {
      for (int h = 0; h < H_; h++) {
        const T* g = gate + std::size_t(n) * 3 * H_ + h;
        const std::size_t row = (std::size_t(n) * H_ + h) * hs_;
        for (int d = 0; d < hs_; d++) {
          y[row + d] = g[0] * o0[row + d] + g[H_] * o1[row + d] + g[2 * H_] * o2[row + d];
        }
      }
    }
  }

  // Branch c's share of dy: w.dout (N, H·hs) = g_c ⊙ dy for the branch's backward, and the gate
  // logits' gradient w.dgate (N, 3H) at column c·H + h = g (1 − g) · (dy · o_c) of that head.
  void ungate(const Arenas<T>& a, const Work& w, const T* dy, Branch c, int N) const {
    const T *gate = a.a(gate_buf_), *o = a.a(o_[c]);
    for (int n = 0; n < N; n++) {
      for (int h = 0; h < H_; h++) {
        const std::size_t row = (std::size_t(n) * H_ + h) * hs_;
        const std::size_t gi = std::size_t(n) * 3 * H_ + c * H_ + h;
        const T g = gate[gi];
        T dg = 0;
        for (int d = 0; d < hs_; d++) {
          w.dout[row + d] = g * dy[row + d];
          dg += dy[row + d] * o[row + d];
        }
        w.dgate[gi] = dg * g * (T(1) - g);
      }
    }
  }

  // cmp: q (rows of qkv) against the compressed tokens (B, nc, Hkv·hs), one prefix per query.
  SparseShape cmp_shape(int B) const {
    return {B, m_.seq_len, nc_, H_, G_, hs_, qkv_row_, G_ * hs_, H_ * hs_, 1};
  }
  // slc: q against k_slc, v_slc (rows of kv), n block ranges per query and kv group.
  SparseShape slc_shape(int B) const {
    return {B, m_.seq_len, m_.seq_len, H_, G_, hs_, qkv_row_, kv_row_, H_ * hs_, m_.nsa_select_n};
  }
  // win: the packed [q | k_win | v_win] buffer, as GQA with a sliding window.
  AttentionShape win_shape(int B) const { return {B, m_.seq_len, H_, G_, hs_, hs_, m_.nsa_window}; }

  ModelConfig m_;
  int H_, G_, hs_, nc_, qkv_row_, kv_row_;  // nc_: compressed tokens per sequence
  ColumnParallelLinear<T> qkv_, kv_, gate_;
  Phi phi_[2];  // keys, values
  std::size_t qkv_buf_, kv_buf_, gate_buf_, hid_[2], act_[2], cmp_[2], o_[3], lse_[3];
  std::vector<KeyRange> cmp_keys_, slc_keys_;  // (B, T, Hkv, 1), (B, T, Hkv, n)
  std::vector<T> p_cmp_, block_score_;         // select_blocks' workspaces
  std::vector<int> block_order_;
};

}  // namespace

template <class T>
std::unique_ptr<TokenMixer<T>> make_nsa_mixer(const ModelConfig& m, int max_batch, const Declarer& d,
                                              const TensorParallel<T>& tp) {
  return std::make_unique<NsaMixer<T>>(m, max_batch, d, tp);
}
template std::unique_ptr<TokenMixer<float>> make_nsa_mixer<float>(const ModelConfig&, int,
                                                                  const Declarer&,
                                                                  const TensorParallel<float>&);
template std::unique_ptr<TokenMixer<double>> make_nsa_mixer<double>(const ModelConfig&, int,
                                                                    const Declarer&,
                                                                    const TensorParallel<double>&);

ModuleCost nsa_cost(const ModelConfig& m) {
  const double C = m.d_model, H = m.n_heads, G = m.kv_heads(), hs = m.head_dim(), l = m.nsa_block,
               d = m.nsa_stride;
  ModuleCost c;
  // Projections ([q | k_win | v_win], [k_slc | v_slc | k_cmp | v_cmp], gates), then φ for keys
  // and values of every kv head once per compressed token, i.e. every d tokens: φ's weights are
  // counted here, amortised per token, and not as attention.
  c.matmul_weights = (H + 6 * G) * hs * C + 3 * H * C + 2 * G * (l * hs + hs) * hs / d;
  // Keys per query: compressed tokens seen + selected raw tokens ≤ t + window. Re-scoring the
  // compressed keys for the selection (one more q·k each) is this implementation's, not counted.
  double sparse_keys = 0;
  for (int t = 0; t < m.seq_len; t++) sparse_keys += compressed_visible(m, t) + selected_tokens(m, t);
  const double keys = sparse_keys / m.seq_len + mean_visible_keys(m.seq_len, m.nsa_window);
  c.other_flops_per_token = 2.0 * H * (hs + hs) * keys;
  // Inference keeps every past token's raw selection K/V (any block may be selected later) and
  // one compressed K/V pair per d tokens. The window branch's K/V (and the raw cmp K/V waiting
  // for their block to fill) are bounded by w (and l) per sequence, not per token: not counted.
  c.cache_elems_per_token = 2 * G * hs + 2 * G * hs / d;
  return c;
}

}  // namespace ellm
