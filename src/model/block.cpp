#include "model/block.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm {
namespace {

// y (n) += x (n): a residual connection or a branch's sum, on the rank's threads.
template <class T>
void add_into(T* y, const T* x, std::size_t n) {
  const PhaseScope phase(Phase::elementwise);
  parallel_items(std::int64_t(n), 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; i++) y[i] += x[i];
  });
}

}  // namespace

template <class T>
Block<T>::Block(const ModelConfig& m, int max_batch, const Declarer& d,
                const ResidualStream<T>& stream)
    : wiring_(m.wiring), C_(m.d_model), T_(m.seq_len), stream_(stream) {
  const int N = max_batch * m.seq_len, R = stream.rows(max_batch);
  const bool sp = stream.sequence_parallel();
  // Arena order: ln1, token mixer, ln2, channel mixer — so the block's tensors are contiguous
  // and its gradients final together (gradient buckets follow the reverse layer order).
  // Freezing by part (finetune.freeze_modules) leaves some of a trained block's parts frozen.
  const Declarer norms = d.frozen_unless(m.finetune.trains_module("norm"));
  ln1_.declare(norms, "ln1", m, R, sp);
  ln1_full_ = sp ? d.buffer("ln1_full", {N, C_}) : ln1_.out;
  mixer_ = make_token_mixer<T>(m, max_batch, d.sub("attn.").frozen_unless(m.finetune.trains_module("attn")), stream.tp());
  if (m.mlp == ChannelMixerKind::None) {  // validation: sequential wiring
    out_ = mid_ = d.buffer("out", {R, C_});
    return;
  }
  if (wiring_ == Wiring::Sequential) mid_ = d.buffer("res2", {R, C_});
  ln2_.declare(norms, "ln2", m, R, sp);
  ln2_full_ = sp ? d.buffer("ln2_full", {N, C_}) : ln2_.out;
  mlp_ = make_channel_mixer<T>(m, max_batch, d.sub("mlp.").frozen_unless(m.finetune.trains_module("mlp")), stream.tp());
  out_ = d.buffer("out", {R, C_});
}

// The block's workspace: the branches' input gradients (N,C each, partial sums before they are
// reduced; parallel wiring keeps both at once, sequential one), under sequence parallelism two
// (N,C) buffers for gathered gradients and partial sums, with parallel wiring the channel mixer's
// partial output (N,C), then the mixers' workspace (one runs at a time).
template <class T>
struct Block<T>::Work {
  T *dln[2], *full[2], *branch;
  Arenas<T> modules;
};

template <class T>
typename Block<T>::Work Block<T>::work(const Arenas<T>& a, int B) const {
  const std::size_t NC = std::size_t(B) * T_ * C_;
  const bool sp = stream_.sequence_parallel(), parallel = wiring_ == Wiring::Parallel;
  T* p = a.scratch;
  Work w;
  w.dln[0] = std::exchange(p, p + NC);
  w.dln[1] = parallel ? std::exchange(p, p + NC) : nullptr;
  for (T*& f : w.full) f = sp ? std::exchange(p, p + NC) : nullptr;
  w.branch = parallel ? std::exchange(p, p + NC) : nullptr;
  w.modules = a.with_scratch(p);
  return w;
}

template <class T>
std::size_t Block<T>::scratch_elems(int B) const {
  const std::size_t NC = std::size_t(B) * T_ * C_;
  const bool parallel = wiring_ == Wiring::Parallel;
  const std::size_t own = NC * ((parallel ? 3 : 1) + (stream_.sequence_parallel() ? 2 : 0));
  return own + std::max(mixer_->scratch_elems(B), mlp_ ? mlp_->scratch_elems(B) : 0);
}

template <class T>
void Block<T>::forward(const Arenas<T>& a, const T* x, int B) {
  if (wiring_ == Wiring::Parallel) {
    forward_parallel(a, x, B);
  } else {
    forward_sequential(a, x, B);
  }
}

template <class T>
void Block<T>::backward(const Arenas<T>& a, const T* x, T* dres, int B) {
  if (wiring_ == Wiring::Parallel) {
    backward_parallel(a, x, dres, B);
  } else {
    backward_sequential(a, x, dres, B);
  }
}

template <class T>
void Block<T>::forward_sequential(const Arenas<T>& a, const T* x, int B) {
  const int R = stream_.rows(B);
  const Work w = work(a, B);
  const std::size_t RC = std::size_t(R) * C_;
  ln1_.forward(a, x, R);
  const T* h1 = stream_.gather(a.a(ln1_.out), a.a(ln1_full_), B);  // (N,C)
  T* mid = a.a(mid_);                                                // (R,C)
  T* partial = stream_.partial_buffer(mid, w.full[0]);
  mixer_->forward(w.modules, h1, partial, B);
  stream_.reduce_partials(partial, mid, B);  // row-parallel: sum the heads' contributions
  add_into(mid, x, RC);
  if (!mlp_) return;  // mid is the output
  ln2_.forward(a, mid, R);
  const T* h2 = stream_.gather(a.a(ln2_.out), a.a(ln2_full_), B);  // (N,C)
  T* out = a.a(out_);                                                // (R,C)
  partial = stream_.partial_buffer(out, w.full[0]);
  mlp_->forward(w.modules, h2, partial, B);
  stream_.reduce_partials(partial, out, B);
  add_into(out, mid, RC);
}

template <class T>
void Block<T>::forward_parallel(const Arenas<T>& a, const T* x, int B) {
  const int R = stream_.rows(B);
  const Work w = work(a, B);
  const std::size_t RC = std::size_t(R) * C_, NC = std::size_t(B) * T_ * C_;
  ln1_.forward(a, x, R);
  ln2_.forward(a, x, R);
  const T* h1 = stream_.gather(a.a(ln1_.out), a.a(ln1_full_), B);  // (N,C)
  const T* h2 = stream_.gather(a.a(ln2_.out), a.a(ln2_full_), B);  // (N,C)
  T* out = a.a(out_);                                                // (R,C)
  T* partial = stream_.partial_buffer(out, w.full[0]);
  mixer_->forward(w.modules, h1, partial, B);
  mlp_->forward(w.modules, h2, w.branch, B);
  add_into(partial, w.branch, NC);
  stream_.reduce_partials(partial, out, B);  // one collective for both branches
  add_into(out, x, RC);
}

template <class T>
typename Block<T>::Cache Block<T>::make_cache(int B, int max_len) const {
  return {mixer_->make_cache(B, max_len), mlp_ ? mlp_->make_cache(B) : nullptr};
}

// forward's two wirings on the chunk's rows; the partial sums are all-reduced in place (the
// inference stream is never sequence-parallel).
template <class T>
void Block<T>::forward_chunk(const Arenas<T>& a, const T* x, int B, int c, int pos0, Cache& cache) {
  if (stream_.sequence_parallel()) throw std::logic_error("Block::forward_chunk: no sequence parallelism");
  const int N = B * c;
  const std::size_t NC = std::size_t(N) * C_;
  const Work w = work(a, B);
  const TensorParallel<T>& tp = stream_.tp();
  T* out = a.a(out_);  // (N,C)
  ln1_.forward(a, x, N);
  if (wiring_ == Wiring::Parallel) {
    ln2_.forward(a, x, N);
    mixer_->forward_chunk(w.modules, a.a(ln1_.out), out, B, c, pos0, *cache.mixer);
    mlp_->forward_chunk(w.modules, a.a(ln2_.out), w.branch, B, c, cache.mlp.get());
    add_into(out, w.branch, NC);
    tp.all_reduce_sum(out, NC);
    add_into(out, x, NC);
    return;
  }
  T* mid = a.a(mid_);  // (N,C); the output itself for a mixer-only block
  mixer_->forward_chunk(w.modules, a.a(ln1_.out), mid, B, c, pos0, *cache.mixer);
  tp.all_reduce_sum(mid, NC);
  add_into(mid, x, NC);
  if (!mlp_) return;
  ln2_.forward(a, mid, N);
  mlp_->forward_chunk(w.modules, a.a(ln2_.out), out, B, c, cache.mlp.get());
  tp.all_reduce_sum(out, NC);
  add_into(out, mid, NC);
}

// dres (R,C) holds d(out); out = mid + mlp(ln2(mid)), mid = x + mixer(ln1(x)). The row-parallel
// outputs' gradient is the gathered dres (reduce-scatter's backward is an all-gather); the
// column-parallel inputs' gradients are partial and summed.
template <class T>
void Block<T>::backward_sequential(const Arenas<T>& a, const T* x, T* dres, int B) {
  const int R = stream_.rows(B);
  const Work w = work(a, B);
  if (mlp_) {
    const T* dout = stream_.gather(dres, w.full[0], B);  // (N,C)
    T* dh2 = stream_.partial_buffer(w.dln[0], w.full[1]);
    mlp_->backward(w.modules, a.a(ln2_full_), dout, dh2, B);
    stream_.reduce_partials(dh2, w.dln[0], B);
    ln2_.backward(a, dres, w.dln[0], a.a(mid_), R);
  }  // dres holds d(mid)
  const T* dmid = stream_.gather(dres, w.full[0], B);
  T* dh1 = stream_.partial_buffer(w.dln[0], w.full[1]);
  mixer_->backward(w.modules, a.a(ln1_full_), dmid, dh1, B);
  stream_.reduce_partials(dh1, w.dln[0], B);
  ln1_.backward(a, dres, w.dln[0], x, R);  // dres holds d(x)
}

// dres (R,C) holds d(out); out = x + mixer(ln1(x)) + mlp(ln2(x)).
template <class T>
void Block<T>::backward_parallel(const Arenas<T>& a, const T* x, T* dres, int B) {
  const int R = stream_.rows(B);
  const Work w = work(a, B);
  const T* dout = stream_.gather(dres, w.full[0], B);  // (N,C), read by both branches
  T* dh1 = stream_.partial_buffer(w.dln[0], w.full[1]);
  mixer_->backward(w.modules, a.a(ln1_full_), dout, dh1, B);
  stream_.reduce_partials(dh1, w.dln[0], B);
  T* dh2 = stream_.partial_buffer(w.dln[1], w.full[1]);
  mlp_->backward(w.modules, a.a(ln2_full_), dout, dh2, B);
  stream_.reduce_partials(dh2, w.dln[1], B);
  ln2_.backward(a, dres, w.dln[1], x, R);  // dres, the residual's gradient, collects both norms'
  ln1_.backward(a, dres, w.dln[0], x, R);
}

template class Block<float>;
template class Block<double>;

ModuleCost block_cost(const ModelConfig& m) {
  ModuleCost c = token_mixer_cost(m);
  c += channel_mixer_cost(m);
  return c;
}

}  // namespace ellm
