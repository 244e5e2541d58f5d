// Mixture of experts (Shazeer et al. 2017; Switch, GShard; DeepSeek's shared experts), as a
// channel mixer:
//   p = softmax(x W_r) (N,E);  each token goes to its top-k experts with weights g = p (or p over
//   the sum of its top-k when moe_renormalize);  y = shared(x) + Σ_j g_j · expert_{e_j}(x).
// The experts are one tensor per projection, (E, F_in, C) and (E, C, F), so each expert's
// tokens go through it as one GEMM: assignments are sorted by expert into a dispatch buffer
// (token order within an expert), and combined back weighted by g. Dropless by default; with a
// capacity factor cf an expert takes its first ⌈cf·N·k/E⌉ assignments and the rest are dropped
// (the token keeps its residual and its other experts). Objective terms, both differentiated:
//   load balancing (Switch/GShard): coeff · E · Σ_i f_i · P_i, f_i = share of the N·k assignments
//   routed to expert i (a constant), P_i = mean router probability of expert i — both over the
//   global batch (summed over the data-parallel replicas: a product of means is not the mean of
//   the replicas' products, and every layout must train the same model);
//   router z-loss (ST-MoE): coeff_z · mean_n logsumexp(x_n W_r)² (its mean over the global batch).
// The top-k choice is a constant of the backward (as in every MoE implementation).
// Expert parallelism (GShard; Megatron-Core's all-to-all dispatcher): the ep ranks of an
// expert-parallel group hold E/ep experts each. A rank sorts its assignments by expert as above,
// sends each expert's rows to the rank that holds it (counts first, then rows), runs what it
// received through its own experts — one GEMM per expert, so the received rows are regrouped
// expert by expert — and sends the outputs back; backward runs the same two exchanges on the
// gradients. Expert weights are then shared by the dp/ep ranks holding the same experts (their
// replica group, TensorDecl::group), the rest of the model by all dp ranks.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "layers/activation.hpp"
#include "layers/linear.hpp"
#include "model/parallel_linear.hpp"
#include "model/channel_mixer.hpp"

namespace ellm {
namespace {
using namespace layers;

template <class T>
class Moe final : public ChannelMixer<T> {
 public:
  Moe(const ModelConfig& m, int max_batch, const Declarer& d, const ReplicaSum& replicas,
      const ExpertParallel<T>& ep)
      : replicas_(replicas), ep_(ep), swiglu_(m.activation == Activation::SwiGLU), renormalize_(m.moe_renormalize),
        seq_len_(m.seq_len), C_(m.d_model), E_(m.moe_experts), k_(m.moe_top_k),
        F_(m.expert_d_ff()), Fin_(swiglu_ ? 2 * F_ : F_), aux_coeff_(m.moe_aux_coeff),
        z_coeff_(m.moe_z_coeff), capacity_factor_(m.moe_capacity_factor),
        El_(E_ / ep.size), first_expert_(ep.rank * El_) {
    // rows: this rank's assignments; expert_rows: the most its experts can receive
    const int N = max_batch * m.seq_len, rows = N * k_, expert_rows = int(max_expert_rows(N));
    if (m.moe_shared_experts > 0) {
      shared_ = make_dense_mlp<T>(m, m.moe_shared_experts * F_, max_batch, d.sub("shared."), {});
    }
    router_ = d.param(weight("router.w", {E_, C_}, Init::normal(m.init_std)));
    const double active = double(k_) / E_;  // each token uses k of the E experts
    TensorDecl w1 = weight("experts.fc.w", {E_, Fin_, C_}, Init::normal(m.init_std));
    TensorDecl b1 = bias("experts.fc.b", {E_, Fin_});
    TensorDecl w2 = weight("experts.out.w", {E_, C_, F_}, residual_init(m));
    TensorDecl b2 = bias("experts.out.b", {E_, C_});
    for (TensorDecl* t : {&w1, &b1, &w2, &b2}) {
      t->active_fraction = active;
      if (ep.size == 1) continue;
      t->shard = {0, {{first_expert_, first_expert_ + El_}}};  // this rank's experts
      t->group = ReplicaGroup::ExpertDataParallel;
    }
    w1_ = d.param(std::move(w1));
    b1_ = d.param(std::move(b1));
    w2_ = d.param(std::move(w2));
    b2_ = d.param(std::move(b2));
    probs_ = d.buffer("router.probs", {N, E_});
    lse_ = d.buffer("router.lse", {N});
    xd_ = d.buffer("dispatch.x", {rows, C_});      // this rank's assignments, expert by expert
    yd_ = d.buffer("dispatch.y", {rows, C_});      // each one's expert output
    xe_ = ep.size > 1 ? d.buffer("experts.x", {expert_rows, C_}) : xd_;  // what this rank's experts take
    ye_ = ep.size > 1 ? d.buffer("experts.y", {expert_rows, C_}) : yd_;
    hpre_ = d.buffer("experts.fc", {expert_rows, Fin_});  // before the activation
    hact_ = d.buffer("experts.act", {expert_rows, F_});
    expert_.resize(std::size_t(N) * k_);
    gate_.resize(std::size_t(N) * k_);
    row_.resize(std::size_t(N) * k_);
    token_of_row_.resize(rows);
    offset_.resize(E_ + 1);
    local_offset_.resize(El_ + 1);
    stats_.expert_tokens.resize(E_);
    // per-step workspaces, sized once: no allocation inside a step
    for (std::vector<int>* v : {&order_, &taken_, &counts_, &start_, &received_}) v->assign(E_, 0);
    send_rows_.assign(ep.size, 0);
    recv_rows_.assign(ep.size, 0);
    regroup_.reserve(expert_rows);
    dgate_.reserve(rows);
    global_.reserve(2 * E_ + 1);
  }

  std::size_t scratch_elems(int B) const override {
    const std::size_t N = std::size_t(B) * seq_len_, rows = N * k_, expert_rows = max_expert_rows(N);
    std::size_t own = rows * 2 * C_ + expert_rows * (Fin_ + F_) + N * 2 * E_;
    if (ep_.size > 1) own += expert_rows * 3 * C_;  // experts' dy and dx, the received rows
    return own + (shared_ ? shared_->scratch_elems(B) : 0);
  }

  void forward(const Arenas<T>& a, const T* x, T* out, int B) override {
    const int N = B * seq_len_;
    route(a, x, N, capacity(N));
    run_experts(a, x);
    if (shared_) {
      shared_->forward(a, x, out, B);
    } else {
      std::fill(out, out + std::size_t(N) * C_, T(0));
    }
    combine(a, out, N);
  }

  void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) override {
    const int N = B * seq_len_;
    const std::size_t rows = std::size_t(N) * k_, expert_rows = max_expert_rows(N);
    T* p = a.scratch;
    const auto take = [&](std::size_t n) { return std::exchange(p, p + n); };
    const bool moves = ep_.size > 1;  // rows travel to other ranks' experts
    T *dyd = take(rows * C_), *dxd = take(rows * C_), *dhpre = take(expert_rows * Fin_),
      *dhact = take(expert_rows * F_), *dgate_probs = take(std::size_t(N) * E_),
      *dlogits = take(std::size_t(N) * E_);
    // this rank's experts' rows (the same as its own assignments' rows when nothing moves)
    T* dye = moves ? take(expert_rows * C_) : dyd;
    T* dxe = moves ? take(expert_rows * C_) : dxd;
    T* exchange = moves ? take(expert_rows * C_) : nullptr;
    const Arenas<T> inner = a.with_scratch(p);
    if (shared_) {
      shared_->backward(inner, x, dout, dx, B);
    } else {
      std::fill(dx, dx + std::size_t(N) * C_, T(0));
    }
    // combine's backward: each assignment's output gradient, and its weight's
    std::vector<T>& dgate = dgate_;
    dgate.assign(rows, T(0));
    const T* yd = a.a(yd_);
    for (std::size_t s = 0; s < rows; s++) {
      if (row_[s] < 0) continue;
      const T* d = dout + (s / k_) * C_;
      const T* y = yd + std::size_t(row_[s]) * C_;
      T* dy = dyd + std::size_t(row_[s]) * C_;
      T dot = 0;
      for (int c = 0; c < C_; c++) {
        dy[c] = gate_[s] * d[c];
        dot += d[c] * y[c];
      }
      dgate[s] = dot;
    }
    to_experts(dyd, dye, exchange);
    experts_backward(a, dye, dxe, dhpre, dhact);
    from_experts(dxe, dxd, exchange);
    for (int r = 0; r < offset_[E_]; r++) {  // dispatch's backward: scatter-add to the tokens
      const T* d = dxd + std::size_t(r) * C_;
      T* t = dx + std::size_t(token_of_row_[r]) * C_;
      for (int c = 0; c < C_; c++) t[c] += d[c];
    }
    router_backward(a, x, dgate.data(), dgate_probs, dlogits, dx, N);
  }

  const RoutingStats* routing() const override { return &stats_; }

  // Cached decoding: each token is routed on its own, so a chunk routes its tokens as the whole
  // sequence did and nothing needs keeping (no cache). Decoding is dropless: a capacity is a
  // share of the whole batch's assignments, which a chunk does not see (the training forward's
  // equal when it dropped nothing; docs/MOE.md). Every expert is announced to the served weights
  // (Arenas::linear) whether or not this chunk routes a token to it, so all are quantized.
  std::unique_ptr<MixerCache> make_cache(int) const override { return nullptr; }
  void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c, MixerCache*) override {
    const int N = B * c;
    if constexpr (std::is_same_v<T, float>) {
      if (a.linear) {
        for (int e = 0; e < E_; e++) {
          a.linear->expect(w1_ + std::size_t(e) * Fin_ * C_, Fin_, C_);
          a.linear->expect(w2_ + std::size_t(e) * C_ * F_, C_, F_);
        }
      }
    }
    route(a, x, N, N * k_);
    run_experts(a, x);
    if (shared_) {
      shared_->forward_chunk(a, x, out, B, c, nullptr);
    } else {
      std::fill(out, out + std::size_t(N) * C_, T(0));
    }
    combine(a, out, N);
  }

 private:
  // The most rows this rank's experts can receive from N tokens on each expert-parallel rank
  // (dropless): a token sends at most min(k, E/ep) of its assignments to any one rank.
  std::size_t max_expert_rows(std::size_t N) const {
    return std::size_t(ep_.size) * N * std::min(k_, El_);
  }

  // The assignments an expert takes from N tokens: ⌈cf·N·k/E⌉, or all of them (dropless).
  int capacity(int N) const {
    return capacity_factor_ > 0 ? int(std::ceil(capacity_factor_ * double(N) * k_ / E_)) : N * k_;
  }

  // The routed rows through their experts: dispatch (x → a(xd_), expert by expert), to the
  // experts' ranks, the experts, and back (→ a(yd_)).
  void run_experts(const Arenas<T>& a, const T* x) {
    T *xd = a.a(xd_), *yd = a.a(yd_);
    for (int r = 0; r < offset_[E_]; r++) {
      std::copy_n(x + std::size_t(token_of_row_[r]) * C_, C_, xd + std::size_t(r) * C_);
    }
    plan_exchange();
    to_experts(xd, a.a(xe_), a.scratch);
    experts_forward(a);
    from_experts(a.a(ye_), yd, a.scratch);
  }

  // out (N,C) += Σ_j g_j · expert_{e_j}(x) over each token's kept assignments.
  void combine(const Arenas<T>& a, T* out, int N) const {
    const T* yd = a.a(yd_);
    for (std::size_t s = 0; s < std::size_t(N) * k_; s++) {
      if (row_[s] < 0) continue;
      const T g = gate_[s];
      const T* y = yd + std::size_t(row_[s]) * C_;
      T* o = out + (s / k_) * C_;
      for (int c = 0; c < C_; c++) o[c] += g * y[c];
    }
  }

  // Expert parallelism's bookkeeping for the last forward: rows to and from each rank, and the
  // regrouping of the received rows (source rank by source rank) expert by expert. With ep = 1
  // this rank's experts are all of them and nothing moves.
  void plan_exchange() {
    if (ep_.size == 1) {
      local_offset_ = offset_;
      return;
    }
    std::vector<int>& counts = counts_;  // per expert, this rank's rows
    for (int e = 0; e < E_; e++) counts[e] = offset_[e + 1] - offset_[e];
    ep_.exchange_counts(counts.data(), received_.data(), El_);
    send_rows_.assign(ep_.size, 0);
    recv_rows_.assign(ep_.size, 0);
    for (int r = 0; r < ep_.size; r++) {
      for (int le = 0; le < El_; le++) {
        send_rows_[r] += counts[r * El_ + le];
        recv_rows_[r] += received_[r * El_ + le];
      }
    }
    // position in the received buffer of each row, in expert-by-expert order
    std::vector<int>& start = start_;  // of block (source, local expert) in the received rows
    for (int i = 1; i < ep_.size * El_; i++) start[i] = start[i - 1] + received_[i - 1];
    regroup_.clear();
    local_offset_[0] = 0;
    for (int le = 0; le < El_; le++) {
      for (int src = 0; src < ep_.size; src++) {
        const int b = src * El_ + le;
        for (int i = 0; i < received_[b]; i++) regroup_.push_back(start[b] + i);
      }
      local_offset_[le + 1] = int(regroup_.size());
    }
  }
  // Rows sorted by expert (this rank's assignments) → this rank's experts' rows, expert by expert.
  void to_experts(const T* mine, T* experts, T* received) const {
    if (ep_.size == 1) return;
    ep_.exchange_rows(mine, send_rows_, received, recv_rows_, C_);
    for (std::size_t i = 0; i < regroup_.size(); i++) {
      std::copy_n(received + std::size_t(regroup_[i]) * C_, C_, experts + i * C_);
    }
  }
  // The inverse: this rank's experts' rows back to the ranks whose assignments they are.
  void from_experts(const T* experts, T* mine, T* received) const {
    if (ep_.size == 1) return;
    for (std::size_t i = 0; i < regroup_.size(); i++) {
      std::copy_n(experts + i * C_, C_, received + std::size_t(regroup_[i]) * C_);
    }
    ep_.exchange_rows(received, recv_rows_, mine, send_rows_, C_);
  }

  // This rank's experts on their rows a(xe_) → a(ye_): one GEMM per expert and projection.
  void experts_forward(const Arenas<T>& a) const {
    T *xe = a.a(xe_), *hpre = a.a(hpre_), *hact = a.a(hact_), *ye = a.a(ye_);
    for (int e = 0; e < El_; e++) {
      const int n = local_offset_[e + 1] - local_offset_[e];
      if (n == 0) continue;
      const std::size_t r0 = local_offset_[e];
      linear_project(a, w1_ + std::size_t(e) * Fin_ * C_, b1(a, e), xe + r0 * C_, hpre + r0 * Fin_, n, C_, Fin_);
      if (swiglu_) {
        swiglu_forward(hact + r0 * F_, hpre + r0 * Fin_, n, F_);
      } else {
        gelu_forward(hact + r0 * F_, hpre + r0 * Fin_, long(n) * F_);
      }
      linear_project(a, w2_ + std::size_t(e) * C_ * F_, b2(a, e), hact + r0 * F_, ye + r0 * C_, n, F_, C_);
    }
  }
  // dy (rows of this rank's experts) → dx of the same rows; weight gradients accumulate.
  void experts_backward(const Arenas<T>& a, const T* dy, T* dx, T* dhpre, T* dhact) const {
    const T *xe = a.a(xe_), *hpre = a.a(hpre_), *hact = a.a(hact_);
    for (int e = 0; e < El_; e++) {
      const int n = local_offset_[e + 1] - local_offset_[e];
      if (n == 0) continue;
      const std::size_t r0 = local_offset_[e];
      linear_backward(dhact + r0 * F_, w2(a.grads, e), b2(a.grads, e), dy + r0 * C_,
                      hact + r0 * F_, w2(a, e), n, F_, C_);
      if (swiglu_) {
        swiglu_backward(dhpre + r0 * Fin_, hpre + r0 * Fin_, dhact + r0 * F_, n, F_);
      } else {
        gelu_backward(dhpre + r0 * Fin_, hpre + r0 * Fin_, dhact + r0 * F_, long(n) * F_);
      }
      linear_backward(dx + r0 * C_, w1(a.grads, e), b1(a.grads, e), dhpre + r0 * Fin_,
                      xe + r0 * C_, w1(a, e), n, C_, Fin_);
    }
  }

  const T* w1(const Arenas<T>& a, int e) const { return a.p(w1_) + std::size_t(e) * Fin_ * C_; }
  const T* b1(const Arenas<T>& a, int e) const { return a.p(b1_) + std::size_t(e) * Fin_; }
  const T* w2(const Arenas<T>& a, int e) const { return a.p(w2_) + std::size_t(e) * C_ * F_; }
  const T* b2(const Arenas<T>& a, int e) const { return a.p(b2_) + std::size_t(e) * C_; }
  T* w1(T* g, int e) const { return g + w1_ + std::size_t(e) * Fin_ * C_; }
  T* b1(T* g, int e) const { return g + b1_ + std::size_t(e) * Fin_; }
  T* w2(T* g, int e) const { return g + w2_ + std::size_t(e) * C_ * F_; }
  T* b2(T* g, int e) const { return g + b2_ + std::size_t(e) * C_; }

  // Router probabilities, top-k choice and weights, the dispatch order (each expert taking at
  // most `capacity` assignments), the objective terms.
  void route(const Arenas<T>& a, const T* x, int N, int capacity) {
    T *probs = a.a(probs_), *lse = a.a(lse_);
    linear_forward(probs, x, a.p(router_), static_cast<const T*>(nullptr), N, C_, E_);  // logits
    double z = 0;
    for (int n = 0; n < N; n++) {  // softmax in place, keeping logsumexp for the z-loss
      T* row = probs + std::size_t(n) * E_;
      const T top = *std::max_element(row, row + E_);
      T sum = 0;
      for (int e = 0; e < E_; e++) sum += (row[e] = std::exp(row[e] - top));
      for (int e = 0; e < E_; e++) row[e] /= sum;
      lse[n] = top + std::log(sum);
      z += double(lse[n]) * lse[n];
    }
    std::vector<int>& order = order_;
    std::fill(stats_.expert_tokens.begin(), stats_.expert_tokens.end(), 0.0);
    for (int n = 0; n < N; n++) {
      const T* row = probs + std::size_t(n) * E_;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k_, order.end(),
                        [&](int i, int j) { return row[i] > row[j] || (row[i] == row[j] && i < j); });
      T sum = 0;
      for (int j = 0; j < k_; j++) sum += row[order[j]];
      for (int j = 0; j < k_; j++) {
        const std::size_t s = std::size_t(n) * k_ + j;
        expert_[s] = order[j];
        gate_[s] = renormalize_ ? row[order[j]] / sum : row[order[j]];
        stats_.expert_tokens[order[j]] += 1;
      }
    }
    // Dispatch order: expert by expert, token order within one; over capacity: dropped.
    std::vector<int>& taken = taken_;  // assignments each expert has taken so far
    std::fill(taken.begin(), taken.end(), 0);
    for (int e = 0; e < E_; e++) offset_[e + 1] = offset_[e] + std::min(int(stats_.expert_tokens[e]), capacity);
    stats_.dropped = 0;
    for (std::size_t s = 0; s < std::size_t(N) * k_; s++) {
      const int e = expert_[s];
      if (taken[e] == capacity) {
        row_[s] = -1;
        stats_.dropped += 1;
        continue;
      }
      row_[s] = offset_[e] + taken[e]++;
      token_of_row_[row_[s]] = int(s / k_);
    }
    // Over the global batch: [tokens per expert | probability sums per expert | z sum].
    global_.assign(2 * E_ + 1, 0.0);
    for (int e = 0; e < E_; e++) {
      global_[e] = stats_.expert_tokens[e];
      for (int n = 0; n < N; n++) global_[E_ + e] += probs[std::size_t(n) * E_ + e];
    }
    global_[2 * E_] = z;
    replicas_.all_reduce_sum(global_.data(), global_.size());
    const double tokens = double(N) * replicas_.size;  // in the global batch
    double balance = 0;  // Σ f_i · P_i
    for (int e = 0; e < E_; e++) balance += global_[e] / (tokens * k_) * global_[E_ + e] / tokens;
    stats_.aux_loss = aux_coeff_ * E_ * balance;
    stats_.z_loss = z_coeff_ * global_[2 * E_] / tokens;
  }

  // dx += ∂(combine weights, aux, z)/∂x through the router: the top-k weights' gradient
  // (through the renormalisation when on), the load-balancing term's ∂/∂p = coeff·E·f_i/N, the
  // softmax, and the z-loss's ∂/∂logit = coeff_z·2·lse·p/N.
  void router_backward(const Arenas<T>& a, const T* x, const T* dgate, T* dprobs, T* dlogits,
                       T* dx, int N) const {
    const T *probs = a.a(probs_), *lse = a.a(lse_);
    std::fill(dprobs, dprobs + std::size_t(N) * E_, T(0));
    for (int n = 0; n < N; n++) {
      const std::size_t s0 = std::size_t(n) * k_;
      T* dp = dprobs + std::size_t(n) * E_;
      const T* p = probs + std::size_t(n) * E_;
      if (!renormalize_) {
        for (int j = 0; j < k_; j++) dp[expert_[s0 + j]] += dgate[s0 + j];
        continue;
      }
      T sum = 0, weighted = 0;  // g_j = p_j / S: ∂L/∂p_j = (dg_j − Σ_l dg_l g_l) / S
      for (int j = 0; j < k_; j++) sum += p[expert_[s0 + j]];
      for (int j = 0; j < k_; j++) weighted += dgate[s0 + j] * gate_[s0 + j];
      for (int j = 0; j < k_; j++) dp[expert_[s0 + j]] += (dgate[s0 + j] - weighted) / sum;
    }
    // ∂aux/∂p_{n,i} = coeff·E·f_i / N_global; the trainer averages the replicas' gradients
    // (sum ÷ dp), so each replica contributes dp times that: coeff·E·f_i / N.
    const double tokens = double(N) * replicas_.size;
    for (int e = 0; e < E_; e++) {
      const T d = T(aux_coeff_ * E_ * global_[e] / (tokens * k_) / N);
      for (int n = 0; n < N; n++) dprobs[std::size_t(n) * E_ + e] += d;
    }
    for (int n = 0; n < N; n++) {
      const T *p = probs + std::size_t(n) * E_, *dp = dprobs + std::size_t(n) * E_;
      T* dl = dlogits + std::size_t(n) * E_;
      T dot = 0;
      for (int e = 0; e < E_; e++) dot += p[e] * dp[e];
      const T z = T(z_coeff_ * 2.0 / N) * lse[n];
      for (int e = 0; e < E_; e++) dl[e] = p[e] * (dp[e] - dot) + z * p[e];
    }
    linear_backward_accumulate(dx, a.g(router_), static_cast<T*>(nullptr), dlogits, x,
                               a.p(router_), N, C_, E_);
  }

  ReplicaSum replicas_;
  ExpertParallel<T> ep_;
  bool swiglu_, renormalize_;
  int seq_len_, C_, E_, k_, F_, Fin_;
  double aux_coeff_, z_coeff_, capacity_factor_;
  int El_, first_expert_;  // this rank's experts: [first_expert_, first_expert_ + El_)
  std::unique_ptr<ChannelMixer<T>> shared_;
  std::size_t router_, w1_, b1_, w2_, b2_, probs_, lse_, xd_, yd_, xe_, ye_, hpre_, hact_;
  // Routing of the last forward: per assignment s = n·k + j its expert, weight and dispatch row
  // (−1: dropped); per dispatch row its token; expert e's rows [offset_[e], offset_[e+1]).
  std::vector<int> expert_, row_, token_of_row_, offset_;
  // Expert parallelism: rows to / from each rank, counts received per (source rank, local
  // expert), this rank's experts' rows [local_offset_[e], local_offset_[e+1]), and for each of
  // those rows its place in the received buffer.
  std::vector<int> send_rows_, recv_rows_, received_, local_offset_, regroup_;
  std::vector<int> order_, taken_, counts_, start_;  // per-step workspaces (E each)
  std::vector<T> gate_, dgate_;
  std::vector<double> global_;  // the last forward's balance statistics over the global batch
  RoutingStats stats_;
};

}  // namespace

template <class T>
std::unique_ptr<ChannelMixer<T>> make_moe(const ModelConfig& m, int max_batch, const Declarer& d,
                                          const ReplicaSum& replicas,
                                          const ExpertParallel<T>& experts) {
  return std::make_unique<Moe<T>>(m, max_batch, d, replicas, experts);
}
template std::unique_ptr<ChannelMixer<float>> make_moe<float>(const ModelConfig&, int, const Declarer&,
                                                              const ReplicaSum&,
                                                              const ExpertParallel<float>&);
template std::unique_ptr<ChannelMixer<double>> make_moe<double>(const ModelConfig&, int, const Declarer&,
                                                                const ReplicaSum&,
                                                                const ExpertParallel<double>&);

// Per token: the router, k routed experts and the shared ones (their weights are what a token
// multiplies by; the other E − k experts cost it nothing).
ModuleCost moe_cost(const ModelConfig& m) {
  const int F = m.expert_d_ff();
  ModuleCost c = dense_mlp_cost(m, F);
  c.matmul_weights *= m.moe_top_k + m.moe_shared_experts;
  c.matmul_weights += double(m.moe_experts) * m.d_model;
  return c;
}

}  // namespace ellm
