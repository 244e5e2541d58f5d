#include "infer/decoder.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <cstdint>
#include <string>
#include <utility>

#include "layers/embedding.hpp"
#include "model/parallel_linear.hpp"

namespace ellm {
using namespace layers;

namespace {

// Records the linear layers a forward asks for or announces (once each, in order of first
// mention), serving none of them.
struct LinearRecorder final : LinearWeights {
  mutable std::vector<LinearShape> seen;
  bool matmul(std::size_t w, int out, int in, const float*, int, float*) const override {
    expect(w, out, in);
    return false;
  }
  void expect(std::size_t w, int out, int in) const override {
    for (const LinearShape& l : seen)
      if (l.w == w) return;
    seen.push_back({w, out, in});
  }
};

template <class T>
TensorParallel<T> without_sequence_parallelism(TensorParallel<T> tp) {
  tp.sequence = false;
  return tp;
}

}  // namespace

template <class T>
Decoder<T>::Decoder(const ModelConfig& cfg, int B, TensorParallel<T> tp)
    : cfg_(cfg), B_(B), plan_(plan_model<T>(cfg, B, without_sequence_parallelism(std::move(tp)))),
      tp_(plan_.stream->tp()), vocab_begin_(tp_.shard.part(cfg.vocab_size).first),
      vocab_local_(cfg.vocab_size / tp_.shard.size) {
  if (B < 1) throw std::invalid_argument("Decoder: batch must be at least 1");
  params_.assign(plan_.params.total(), T(0));
  acts_.assign(plan_.acts.total(), T(0));
  std::size_t scratch = 0;
  for (const auto& b : plan_.blocks) scratch = std::max(scratch, b->scratch_elems(B));
  scratch_.assign(scratch, T(0));
  if (cfg.positions == Positions::Sinusoidal) {
    positions_ = sinusoid_table<T>(cfg.seq_len, cfg.d_model, cfg.init_std);
  }
  for (const auto& b : plan_.blocks) caches_.push_back(b->make_cache(B, cfg.seq_len));
}

template <class T>
std::vector<LinearShape> Decoder<T>::linear_layers() {
  LinearRecorder recorder;
  const LinearWeights* served = std::exchange(linear_, &recorder);
  reset();
  const std::vector<int> token(std::size_t(B_), 0);
  forward(token.data(), 1, false);
  linear_ = served;
  reset();
  return recorder.seen;
}

template <class T>
std::size_t Decoder<T>::release_fp32_linears(const std::vector<LinearShape>& layers) {
  if (!linear_) throw std::logic_error("Decoder::release_fp32_linears: no served copies");
  const std::uintptr_t page = std::uintptr_t(sysconf(_SC_PAGESIZE));
  std::size_t released = 0;
  for (const LinearShape& l : layers) {
    if (l.w == plan_.wte) continue;  // a tied head: the table still serves the lookup
    // whole pages inside the weight only: its neighbours stay
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(params_.data() + l.w);
    const std::uintptr_t end = begin + std::size_t(l.out) * l.in * sizeof(T);
    const std::uintptr_t b = (begin + page - 1) / page * page, e = end / page * page;
    if (b >= e) continue;
    if (madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED) != 0)
      throw std::runtime_error("Decoder::release_fp32_linears: madvise failed");
    released += e - b;
  }
  fp32_released_ = true;
  return released;
}

template <class T>
void Decoder<T>::reset() {
  for (std::size_t l = 0; l < caches_.size(); l++) caches_[l] = plan_.blocks[l]->make_cache(B_, cfg_.seq_len);
  pos_ = 0;
}

template <class T>
const T* Decoder<T>::forward(const int* tokens, int c, bool all_rows) {
  if (c < 1 || pos_ + c > cfg_.seq_len) {
    throw std::out_of_range("Decoder: tokens " + std::to_string(pos_) + ".." +
                            std::to_string(pos_ + c - 1) + " exceed the context of model.seq_len = " +
                            std::to_string(cfg_.seq_len));
  }
  if (fp32_released_ && !linear_) throw std::logic_error("Decoder: the fp32 linear weights were released; reload them first");
  const int C = cfg_.d_model, N = B_ * c;
  T* x = a(plan_.encoded);  // (N,C)
  embedding_forward(x, tokens, p(plan_.wte), B_, c, C, vocab_begin_, vocab_begin_ + vocab_local_);
  tp_.all_reduce_sum(x, std::size_t(N) * C);  // vocabulary-parallel lookup
  const T* positions = positions_.empty() ? p(plan_.wpe) : positions_.data();
  if (positions) {  // absolute positions pos_…: the table from row pos_ on, for each sequence
    for (int b = 0; b < B_; b++) positions_forward(x + std::size_t(b) * c * C, positions + std::size_t(pos_) * C, c, 0, c, C);
  }
  const Arenas<T> ar{params_.data(), nullptr, acts_.data(), scratch_.data(), linear_};
  if (cfg_.finetune.method == FinetuneMethod::DoRA)  // row norms that span the tensor-parallel ranks
    for (const auto& b : plan_.blocks) b->for_each_adapter([&](const LinearAdapter<T>& x) { x.refresh_norms(ar, tp_); });
  for (int l = 0; l < cfg_.n_layers; l++) {
    const T* in = l == 0 ? x : a(plan_.blocks[l - 1]->output());
    plan_.blocks[l]->forward_chunk(ar, in, B_, c, pos_, caches_[l]);
  }
  plan_.lnf.forward(ar, a(plan_.blocks.back()->output()), N);
  head(c, all_rows);
  pos_ += c;
  return logits_.data();
}

// logits (R,V) for the final norm's rows (all, or each sequence's last): this rank's vocabulary
// slice, gathered from every rank and put back in vocabulary order.
template <class T>
void Decoder<T>::head(int c, bool all_rows) {
  const int C = cfg_.d_model, V = cfg_.vocab_size, Vl = vocab_local_, R = all_rows ? B_ * c : B_;
  const T* rows = a(plan_.lnf.out);  // (B·c, C)
  if (!all_rows) {
    last_.resize(std::size_t(B_) * C);
    for (int b = 0; b < B_; b++) std::copy_n(rows + (std::size_t(b) * c + c - 1) * C, C, last_.data() + std::size_t(b) * C);
    rows = last_.data();
  }
  logits_.resize(std::size_t(R) * V);
  const int tp = tp_.shard.size;
  T* local = tp == 1 ? logits_.data() : (local_.resize(std::size_t(R) * Vl), local_.data());
  const Arenas<T> ar{params_.data(), nullptr, acts_.data(), scratch_.data(), linear_};
  linear_project(ar, plan_.head(), static_cast<const T*>(nullptr), rows, local, R, C, Vl);
  if (tp == 1) return;
  gathered_.resize(std::size_t(tp) * R * Vl);
  tp_.all_gather(local, gathered_.data(), std::size_t(R) * Vl);  // (tp, R, Vl)
  for (int r = 0; r < tp; r++) {
    for (int n = 0; n < R; n++) {
      std::copy_n(gathered_.data() + (std::size_t(r) * R + n) * Vl, Vl, logits_.data() + std::size_t(n) * V + std::size_t(r) * Vl);
    }
  }
}

template class Decoder<float>;
template class Decoder<double>;

}  // namespace ellm
