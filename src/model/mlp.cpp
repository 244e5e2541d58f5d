// The dense MLP: fc (column-parallel, d_ff or SwiGLU's 2·d_ff outputs) → GELU (tanh or exact) or SwiGLU →
// out (row-parallel, back to C). Under tensor parallelism each rank keeps d_ff/tp hidden units
// (of each SwiGLU branch), so the activation needs no communication.
#include <algorithm>
#include <vector>

#include "layers/activation.hpp"
#include "model/channel_mixer.hpp"
#include "model/parallel_linear.hpp"

namespace ellm {
namespace {
using namespace layers;

int fc_width(const ModelConfig& m, int d_ff) { return m.activation == Activation::SwiGLU ? 2 * d_ff : d_ff; }

template <class T>
class DenseMlp final : public ChannelMixer<T> {
 public:
  DenseMlp(const ModelConfig& m, int d_ff, int max_batch, const Declarer& d, const TpShard& tp)
      : activation_(m.activation), swiglu_(m.activation == Activation::SwiGLU), seq_len_(m.seq_len), F_(d_ff / tp.size) {
    const int C = m.d_model, F = d_ff, Fin = fc_width(m, d_ff), N = max_batch * m.seq_len;
    // this rank's rows of each branch (SwiGLU: gate and up)
    const Shard rows = swiglu_ ? tp.along(0, {{0, F}, {F, F}}) : tp.along(0, {{0, F}});
    std::vector<TensorDecl> fc_bias;
    if (m.linear_bias()) fc_bias.push_back(bias("fc.b", {Fin}).sharded(rows));
    fc_.declare(d, C, {weight("fc.w", {Fin, C}, Init::normal(m.init_std)).sharded(rows)},
                std::move(fc_bias));
    // the adapted ranges of fc's rows: SwiGLU's gate and up halves, or the whole of it
    const Shard hidden = tp.along(0, {{0, F}});
    std::vector<typename LinearAdapter<T>::Target> fc_targets;
    fc_targets.push_back({swiglu_ ? "gate" : "fc", fc_.w, 0, 0, F, hidden});
    if (swiglu_) fc_targets.push_back({"up", fc_.w, F_, F_, F, hidden, F});
    fc_.adapt(d, m.finetune, fc_targets, N);
    out_.declare(d, "out", F, C, residual_init(m), m.linear_bias(), tp);
    out_.adapt(d, m.finetune, "down", F, tp, N);
    fch_ = d.buffer("fch", {N, fc_.out});       // (N, F_in / tp)
    fch_act_ = d.buffer("fch_act", {N, F_});   // (N, F / tp)
  }

  std::size_t scratch_elems(int B) const override {
    return std::size_t(B) * seq_len_ * (fc_.out + F_);
  }

  void forward(const Arenas<T>& a, const T* x, T* out, int B) override {
    forward_rows(a, x, out, B * seq_len_);
  }
  // Per token: a chunk is just fewer rows.
  void forward_chunk(const Arenas<T>& a, const T* x, T* out, int B, int c, MixerCache*) override {
    forward_rows(a, x, out, B * c);
  }
  void forward_rows(const Arenas<T>& a, const T* x, T* out, int N) {
    fc_.forward(a, x, a.a(fch_), N);  // (N,F_in)
    if (swiglu_) {
      swiglu_forward(a.a(fch_act_), a.a(fch_), N, F_);
    } else if (activation_ == Activation::GELUExact) {
      gelu_exact_forward(a.a(fch_act_), a.a(fch_), long(N) * F_);
    } else {
      gelu_forward(a.a(fch_act_), a.a(fch_), long(N) * F_);
    }
    out_.forward(a, a.a(fch_act_), out, N);  // (N,C) partial
  }

  void backward(const Arenas<T>& a, const T* x, const T* dout, T* dx, int B) override {
    const int N = B * seq_len_;
    T* dfch_act = a.scratch;                          // (N,F)
    T* dfch = dfch_act + std::size_t(N) * F_;         // (N,F_in)
    out_.backward(a, dfch_act, dout, a.a(fch_act_), N);
    if (swiglu_) {
      swiglu_backward(dfch, a.a(fch_), dfch_act, N, F_);
    } else if (activation_ == Activation::GELUExact) {
      gelu_exact_backward(dfch, a.a(fch_), dfch_act, long(N) * F_);
    } else {
      gelu_backward(dfch, a.a(fch_), dfch_act, long(N) * F_);
    }
    fc_.backward(a, dx, dfch, x, N);
  }

  void for_each_adapter(const std::function<void(const LinearAdapter<T>&)>& f) const override {
    f(fc_.adapter);
    f(out_.adapter);
  }

 private:
  Activation activation_;
  bool swiglu_;
  int seq_len_, F_;
  ColumnParallelLinear<T> fc_;
  RowParallelLinear<T> out_;
  std::size_t fch_, fch_act_;
};

}  // namespace

template <class T>
std::unique_ptr<ChannelMixer<T>> make_dense_mlp(const ModelConfig& m, int d_ff, int max_batch,
                                                const Declarer& d, const TpShard& tp) {
  return std::make_unique<DenseMlp<T>>(m, d_ff, max_batch, d, tp);
}
template std::unique_ptr<ChannelMixer<float>> make_dense_mlp<float>(const ModelConfig&, int, int,
                                                                    const Declarer&, const TpShard&);
template std::unique_ptr<ChannelMixer<double>> make_dense_mlp<double>(const ModelConfig&, int, int,
                                                                      const Declarer&, const TpShard&);

template <class T>
std::unique_ptr<ChannelMixer<T>> make_channel_mixer(const ModelConfig& m, int max_batch,
                                                    const Declarer& d, const TensorParallel<T>& tp) {
  switch (m.mlp) {
    case ChannelMixerKind::MoE: return make_moe<T>(m, max_batch, d, tp.replicas, tp.experts);
    case ChannelMixerKind::RWKV: return make_rwkv_channel_mix<T>(m, max_batch, d, tp.shard);
    case ChannelMixerKind::None: return nullptr;
    case ChannelMixerKind::Dense: break;
  }
  return make_dense_mlp<T>(m, m.d_ff, max_batch, d, tp.shard);
}
template std::unique_ptr<ChannelMixer<float>> make_channel_mixer<float>(
    const ModelConfig&, int, const Declarer&, const TensorParallel<float>&);
template std::unique_ptr<ChannelMixer<double>> make_channel_mixer<double>(
    const ModelConfig&, int, const Declarer&, const TensorParallel<double>&);

ModuleCost dense_mlp_cost(const ModelConfig& m, int d_ff) {
  ModuleCost c;
  c.matmul_weights = double(fc_width(m, d_ff)) * m.d_model + double(d_ff) * m.d_model;
  return c;
}

ModuleCost channel_mixer_cost(const ModelConfig& m) {
  switch (m.mlp) {
    case ChannelMixerKind::MoE: return moe_cost(m);
    case ChannelMixerKind::RWKV: return rwkv_channel_mix_cost(m);
    case ChannelMixerKind::None: return {};
    case ChannelMixerKind::Dense: break;
  }
  return dense_mlp_cost(m, m.d_ff);
}

}  // namespace ellm
