#include "model/gpt.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "layers/activation.hpp"
#include "layers/crossentropy.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "layers/norm.hpp"
#include "util/rng.hpp"

namespace ellm {
using namespace layers;

namespace {

// Vaswani et al.'s fixed encoding: channel 2i is sin(t / 10000^(2i/C)), channel 2i+1 the cosine,
// scaled by `scale`. At amplitude 1 it would drown token embeddings initialised with std 0.02;
// at the embeddings' init std it starts as strong as a learned table (the fair comparison).
template <class T>
std::vector<T> sinusoid_table(int Tn, int C, double scale) {
  std::vector<T> table(std::size_t(Tn) * C);
  for (int t = 0; t < Tn; t++) {
    for (int c = 0; c < C; c++) {
      const double angle = t / std::pow(10000.0, double(c - c % 2) / C);
      table[std::size_t(t) * C + c] = T(scale * (c % 2 == 0 ? std::sin(angle) : std::cos(angle)));
    }
  }
  return table;
}

}  // namespace

template <class T>
GPT<T>::GPT(const ModelConfig& cfg, int max_batch, TensorParallel<T> tp)
    : cfg_(cfg), max_batch_(max_batch), tp_(std::move(tp)),
      vocab_begin_(tp_.shard.part(cfg.vocab_size).first),
      vocab_local_(cfg.vocab_size / tp_.shard.size), ff_local_(cfg.d_ff / tp_.shard.size) {
  ModelPlan<T> plan = plan_model<T>(cfg, max_batch, tp_);
  pl_ = std::move(plan.params);
  al_ = std::move(plan.acts);
  mixers_ = std::move(plan.mixers);
  params_.assign(pl_.arena.total(), T(0));
  grads_.assign(pl_.arena.total(), T(0));
  acts_.assign(al_.arena.total(), T(0));
  if (cfg.positions == Positions::Sinusoidal) {
    positions_ = sinusoid_table<T>(cfg.seq_len, cfg.d_model, cfg.init_std);
  }

  const std::size_t N = std::size_t(max_batch) * cfg.seq_len, C = cfg.d_model;
  std::size_t width = 0, mixer_scratch = 0;
  for (const auto& m : mixers_) {
    width = std::max<std::size_t>(width, m->width());
    mixer_scratch = std::max(mixer_scratch, m->scratch_elems(max_batch));
  }
  mixer_scratch_.assign(mixer_scratch, T(0));
  ce_rows_.assign(3 * N, T(0));
  if (tp_.sequence_parallel()) full_.assign(N * C, T(0));
  const std::size_t sizes[] = {N * C, N * C, N * width, N * fc_in_width(cfg) / tp_.shard.size,
                               N * std::size_t(ff_local_)};
  T** views[] = {&dres_, &dln_, &datty_, &dfch_, &dfch_act_};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  scratch_.assign(total, T(0));
  std::size_t off = 0;
  for (int i = 0; i < 5; i++) {
    *views[i] = scratch_.data() + off;
    off += sizes[i];
  }
}

template <class T>
void GPT<T>::init_params(std::uint64_t seed) {
  Rng rng(seed);
  const double residual_scale = 1.0 / std::sqrt(2.0 * cfg_.n_layers);
  std::vector<T> full;
  for (const TensorInfo& t : pl_.arena.tensors()) {
    T* w = params_.data() + t.offset;
    const bool is_norm_gain = t.shape.size() == 1 && t.name.find("ln") != std::string::npos &&
                              t.name.back() == 'w';
    if (t.shape.size() == 1) {
      std::fill(w, w + t.numel, is_norm_gain ? T(1) : T(0));
      continue;
    }
    const bool residual_out = t.name.ends_with("attn.out.w") || t.name.ends_with("mlp.out.w");
    const double std = cfg_.init_std * (residual_out ? residual_scale : 1.0);
    full.resize(std::size_t(t.full_shape[0]) * t.full_shape[1]);
    for (T& x : full) x = T(rng.normal() * std);
    extract_shard(full.data(), t, w);
  }
}

template <class T>
void GPT<T>::norm_forward(T* out, T* mean, T* rstd, const T* inp, std::size_t w, std::size_t b,
                          int N) {
  if (cfg_.norm == Norm::LayerNorm) {
    layernorm_forward(out, mean, rstd, inp, p(w), p(b), N, cfg_.d_model, cfg_.norm_eps);
  } else {
    rmsnorm_forward(out, rstd, inp, p(w), N, cfg_.d_model, cfg_.norm_eps);
  }
}

// Under sequence parallelism a rank's rows give only part of a norm's weight gradient: the group
// sums this backward's contribution (the delta, so that gradients accumulated before stay right).
template <class T>
void GPT<T>::norm_backward(T* dinp, std::size_t w, std::size_t b, const T* dout, const T* inp,
                           const T* mean, const T* rstd, int N) {
  const int C = cfg_.d_model;
  const bool shared = tp_.sequence_parallel();
  const std::size_t gains[] = {w, b};
  if (shared) {
    norm_before_.clear();
    for (std::size_t t : gains) {
      if (t != kAbsent) norm_before_.insert(norm_before_.end(), g(t), g(t) + C);
    }
  }
  if (cfg_.norm == Norm::LayerNorm) {
    layernorm_backward(dinp, g(w), g(b), dout, inp, p(w), mean, rstd, N, C);
  } else {
    rmsnorm_backward(dinp, g(w), dout, inp, p(w), rstd, N, C);
  }
  if (!shared) return;
  norm_delta_.resize(C);
  std::size_t k = 0;
  for (std::size_t t : gains) {
    if (t == kAbsent) continue;
    T* grad = g(t);
    const T* before = norm_before_.data() + k;
    for (int c = 0; c < C; c++) norm_delta_[c] = grad[c] - before[c];  // this backward's part
    tp_.all_reduce_sum(norm_delta_.data(), C);
    for (int c = 0; c < C; c++) grad[c] = before[c] + norm_delta_[c];
    k += C;
  }
}

// The residual stream's rows on this rank: all N, or its 1/tp under sequence parallelism.
template <class T>
int GPT<T>::stream_rows(int B) const {
  return tp_.sequence_parallel() ? B * cfg_.seq_len / tp_.shard.size : B * cfg_.seq_len;
}

// Where a row-parallel layer writes its partial sums (N,C): the shard's own buffer, summed in
// place, or (sequence parallelism) the full-size scratch, then reduce-scattered onto the rows.
template <class T>
T* GPT<T>::partial_out(T* rows) {
  return tp_.sequence_parallel() ? full_.data() : rows;
}
template <class T>
void GPT<T>::sum_partials(T* partial, T* rows, int B) {
  const std::size_t C = cfg_.d_model;
  if (tp_.sequence_parallel()) {
    tp_.reduce_scatter(partial, rows, std::size_t(stream_rows(B)) * C);
  } else {
    tp_.all_reduce_sum(rows, std::size_t(B) * cfg_.seq_len * C);
  }
}
// The (N,C) input of a column-parallel layer: the rows themselves, or gathered into `full`.
template <class T>
const T* GPT<T>::gather_rows(const T* rows, T* full, int B) {
  if (!tp_.sequence_parallel()) return rows;
  tp_.all_gather(rows, full, std::size_t(stream_rows(B)) * cfg_.d_model);
  return full;
}
template <class T>
void GPT<T>::block_forward(int l, const T* x, int B) {
  const int C = cfg_.d_model, N = B * cfg_.seq_len, R = stream_rows(B), F = ff_local_,
            Fin = fc_in_width(cfg_) / tp_.shard.size;
  const BlockParams& bp = pl_.blocks[l];
  const BlockActs& ba = al_.blocks[l];
  const int W = mixers_[l]->width();
  const bool bias_here = tp_.shard.rank == 0;  // row-parallel outputs are summed: add biases once

  norm_forward(a(ba.ln1), a(ba.ln1_mean), a(ba.ln1_rstd), x, bp.ln1_w, bp.ln1_b, R);
  const T* ln1 = gather_rows(a(ba.ln1), a(ba.ln1_full), B);                       // (N,C)
  mixers_[l]->forward(arenas(), ln1, a(ba.atty), B);                               // (N,W)
  T* res2 = a(ba.res2);                                                            // (R,C)
  T* attn_out = partial_out(res2);
  linear_forward(attn_out, a(ba.atty), p(bp.attn_out_w), bias_here ? p(bp.attn_out_b) : nullptr, N, W, C);
  sum_partials(attn_out, res2, B);  // row-parallel: sum the heads' contributions
  for (std::size_t i = 0; i < std::size_t(R) * C; i++) res2[i] += x[i];
  norm_forward(a(ba.ln2), a(ba.ln2_mean), a(ba.ln2_rstd), res2, bp.ln2_w, bp.ln2_b, R);
  const T* ln2 = gather_rows(a(ba.ln2), a(ba.ln2_full), B);                       // (N,C)
  linear_forward(a(ba.fch), ln2, p(bp.fc_w), p(bp.fc_b), N, C, Fin);              // (N,F_in)
  if (cfg_.activation == Activation::SwiGLU) {
    swiglu_forward(a(ba.fch_act), a(ba.fch), N, F);
  } else {
    gelu_forward(a(ba.fch_act), a(ba.fch), long(N) * F);
  }
  T* res3 = a(ba.res3);                                                            // (R,C)
  T* mlp_out = partial_out(res3);
  linear_forward(mlp_out, a(ba.fch_act), p(bp.fc_out_w), bias_here ? p(bp.fc_out_b) : nullptr, N, F, C);
  sum_partials(mlp_out, res3, B);
  for (std::size_t i = 0; i < std::size_t(R) * C; i++) res3[i] += res2[i];
}

template <class T>
double GPT<T>::forward(const int* tokens, const int* targets, int B) {
  if (B < 1 || B > max_batch_) throw std::invalid_argument("GPT::forward: batch exceeds max_batch");
  const int Tn = cfg_.seq_len, C = cfg_.d_model, N = B * Tn, R = stream_rows(B), V = vocab_local_;
  batch_ = B;
  tokens_.assign(tokens, tokens + N);
  targets_.assign(targets, targets + N);

  T* encoded = a(al_.encoded);  // (R,C)
  T* lookup = partial_out(encoded);
  embedding_forward(lookup, tokens, p(pl_.wte), B, Tn, C, vocab_begin_, vocab_begin_ + vocab_local_);
  sum_partials(lookup, encoded, B);  // vocabulary-parallel lookup
  const T* positions = positions_.empty() ? p(pl_.wpe) : positions_.data();
  if (positions) positions_forward(encoded, positions, R, first_row(B), Tn, C);
  const T* x = encoded;
  for (int l = 0; l < cfg_.n_layers; l++) {
    block_forward(l, x, B);
    x = a(al_.blocks[l].res3);
  }
  norm_forward(a(al_.lnf), a(al_.lnf_mean), a(al_.lnf_rstd), x, pl_.lnf_w, pl_.lnf_b, R);
  const T* lnf = gather_rows(a(al_.lnf), a(al_.lnf_full), B);  // (N,C)
  linear_forward(a(al_.logits), lnf, p(pl_.wte), static_cast<T*>(nullptr), N, C, V);
  const TensorParallel<T>& tp = tp_;
  return crossentropy_forward<T>(
      a(al_.logits), a(al_.losses), targets, N, V, vocab_begin_, ce_rows_.data(),
      [&tp](T* x, int n) { tp.all_reduce_max(x, std::size_t(n)); },
      [&tp](T* x, int n) { tp.all_reduce_sum(x, std::size_t(n)); });
}

template <class T>
void GPT<T>::block_backward(int l, const T* x, T* dres, int B) {
  const int C = cfg_.d_model, N = B * cfg_.seq_len, R = stream_rows(B), F = ff_local_,
            Fin = fc_in_width(cfg_) / tp_.shard.size;
  const BlockParams& bp = pl_.blocks[l];
  const BlockActs& ba = al_.blocks[l];
  const int W = mixers_[l]->width();

  // dres (R,C) holds d(res3); res3 = res2 + mlp(ln2(res2)). The row-parallel output's gradient is
  // the gathered dres (reduce-scatter's backward is an all-gather).
  const T* dmlp = gather_rows(dres, full_.data(), B);                               // (N,C)
  linear_backward(dfch_act_, g(bp.fc_out_w), g(bp.fc_out_b), dmlp, a(ba.fch_act), p(bp.fc_out_w), N,
                  F, C);
  if (cfg_.activation == Activation::SwiGLU) {
    swiglu_backward(dfch_, a(ba.fch), dfch_act_, N, F);
  } else {
    gelu_backward(dfch_, a(ba.fch), dfch_act_, long(N) * F);
  }
  T* dln2 = partial_out(dln_);  // column-parallel: the slices' input gradients are summed
  linear_backward(dln2, g(bp.fc_w), g(bp.fc_b), dfch_, a(ba.ln2_full), p(bp.fc_w), N, C, Fin);
  sum_partials(dln2, dln_, B);
  norm_backward(dres, bp.ln2_w, bp.ln2_b, dln_, a(ba.res2), a(ba.ln2_mean), a(ba.ln2_rstd), R);
  // dres holds d(res2); res2 = x + attn_out(mixer(ln1(x)))
  const T* dattn = gather_rows(dres, full_.data(), B);
  linear_backward(datty_, g(bp.attn_out_w), g(bp.attn_out_b), dattn, a(ba.atty), p(bp.attn_out_w),
                  N, W, C);
  T* dln1 = partial_out(dln_);
  mixers_[l]->backward(arenas(), a(ba.ln1_full), a(ba.atty), datty_, dln1, B);
  sum_partials(dln1, dln_, B);
  norm_backward(dres, bp.ln1_w, bp.ln1_b, dln_, x, a(ba.ln1_mean), a(ba.ln1_rstd), R);
  // dres holds d(x)
}

template <class T>
void GPT<T>::backward(const std::function<void(int layer)>& grads_final) {
  const auto final_from = [&](int layer) {
    if (grads_final) grads_final(layer);
  };
  if (batch_ == 0) throw std::logic_error("GPT::backward called before forward");
  const int B = batch_, Tn = cfg_.seq_len, C = cfg_.d_model, N = B * Tn, R = stream_rows(B),
            V = vocab_local_;
  T* dlogits = a(al_.logits);  // probabilities become their own gradient
  crossentropy_backward(dlogits, targets_.data(), N, V, vocab_begin_);
  T* dlnf = partial_out(dln_);  // vocabulary-parallel head: summed over the vocabulary shards
  linear_backward(dlnf, g(pl_.wte), static_cast<T*>(nullptr), dlogits, a(al_.lnf_full), p(pl_.wte),
                  N, C, V);
  sum_partials(dlnf, dln_, B);
  std::fill(dres_, dres_ + std::size_t(R) * C, T(0));
  const T* x_last = cfg_.n_layers > 0 ? a(al_.blocks.back().res3) : a(al_.encoded);
  norm_backward(dres_, pl_.lnf_w, pl_.lnf_b, dln_, x_last, a(al_.lnf_mean), a(al_.lnf_rstd), R);
  final_from(cfg_.n_layers);
  for (int l = cfg_.n_layers - 1; l >= 0; l--) {
    const T* x = l == 0 ? a(al_.encoded) : a(al_.blocks[l - 1].res3);
    block_backward(l, x, dres_, B);
    final_from(l);
  }
  // Replicated embeddings take their gradient from every row, so every rank computes the same.
  const T* dembed = gather_rows(dres_, full_.data(), B);  // (N,C)
  embedding_backward(g(pl_.wte), dembed, tokens_.data(), B, Tn, C, vocab_begin_,
                     vocab_begin_ + vocab_local_);
  if (pl_.wpe != kAbsent) positions_backward(g(pl_.wpe), dembed, N, 0, Tn, C);
  final_from(-1);
  batch_ = 0;  // the probabilities were consumed: a second backward needs a new forward
}

template <class T>
void GPT<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template class GPT<float>;
template class GPT<double>;

}  // namespace ellm
