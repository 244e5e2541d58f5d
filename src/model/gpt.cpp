#include "model/gpt.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "layers/crossentropy.hpp"
#include "layers/embedding.hpp"
#include "layers/linear.hpp"
#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm {
using namespace layers;

namespace {
// Each tensor-parallel rank computes only part of this gradient, summed in partial_pack (frozen: no gradient).
bool packs_partial_grad(const TensorInfo& t, int tp_size) { return t.partial_grad && t.trainable && tp_size > 1; }
}  // namespace

template <class T>
ModelBufferSizes model_buffer_sizes(const ModelPlan<T>& plan, const ModelConfig& cfg, int max_batch, int tp_size) {
  ModelBufferSizes n;
  n.params = plan.params.total();
  n.grads = plan.params.trainable_total();
  n.acts = plan.acts.total();
  const std::size_t NC = std::size_t(max_batch) * cfg.seq_len * cfg.d_model;
  n.scratch = NC * (plan.stream->sequence_parallel() ? 3 : 2);
  for (const auto& b : plan.blocks) n.block_scratch = std::max(n.block_scratch, b->scratch_elems(max_batch));
  n.ce_rows = 3 * std::size_t(max_batch) * cfg.seq_len;
  if (cfg.positions == Positions::Sinusoidal) n.positions = std::size_t(cfg.seq_len) * cfg.d_model;
  for (const TensorInfo& t : plan.params.tensors())
    if (packs_partial_grad(t, tp_size)) n.partial_pack += t.full_numel;
  return n;
}

template <class T>
GPT<T>::GPT(const ModelConfig& cfg, int max_batch, TensorParallel<T> tp)
    : cfg_(cfg), max_batch_(max_batch), plan_(plan_model<T>(cfg, max_batch, tp)),
      stream_(*plan_.stream), vocab_begin_(tp.shard.part(cfg.vocab_size).first),
      vocab_local_(cfg.vocab_size / tp.shard.size) {
  const ModelBufferSizes n = model_buffer_sizes(plan_, cfg, max_batch, tp.shard.size);
  params_.assign(n.params, T(0));
  grads_.assign(n.grads, T(0));
  lowest_trainable_ = cfg.n_layers + 1;
  for (const TensorInfo& t : plan_.params.tensors())
    if (t.trainable) lowest_trainable_ = std::min(lowest_trainable_, t.layer);
  acts_.assign(n.acts, T(0));
  if (cfg.positions == Positions::Sinusoidal) {
    positions_ = sinusoid_table<T>(cfg.seq_len, cfg.d_model, cfg.init_std);  // layers/embedding
  }
  block_scratch_.assign(n.block_scratch, T(0));
  ce_rows_.assign(n.ce_rows, T(0));
  scratch_.assign(n.scratch, T(0));
  const std::size_t NC = std::size_t(max_batch) * cfg.seq_len * cfg.d_model;
  dres_ = scratch_.data();
  dln_ = dres_ + NC;
  full_ = stream_.sequence_parallel() ? dln_ + NC : nullptr;
  for (const TensorInfo& t : plan_.params.tensors())
    if (packs_partial_grad(t, tp.shard.size)) partial_.push_back(&t);
  partial_pack_.assign(n.partial_pack, T(0));
}

template <class T>
void GPT<T>::init_params(std::uint64_t seed) {
  init_tensors(plan_.params, params_.data(), seed);
}

template <class T>
double GPT<T>::forward(const int* tokens, const int* targets, int B, double divisor) {
  if (B < 1 || B > max_batch_) throw std::invalid_argument("GPT::forward: batch exceeds max_batch");
  if (stream_.sequence_parallel() && B * cfg_.seq_len % stream_.tp().shard.size != 0) {
    throw std::invalid_argument("GPT::forward: sequence parallelism needs B·T divisible by tp");
  }
  const int Tn = cfg_.seq_len, C = cfg_.d_model, N = B * Tn, R = stream_.rows(B), V = vocab_local_;
  batch_ = B;
  tokens_.assign(tokens, tokens + N);
  targets_.assign(targets, targets + N);
  if (divisor <= 0) divisor = double(std::max<std::ptrdiff_t>(1, std::count_if(targets, targets + N, [](int t) { return t >= 0; })));
  divisor_ = divisor;

  T* encoded = a(plan_.encoded);  // (R,C)
  T* lookup = stream_.partial_buffer(encoded, full_);
  embedding_forward(lookup, tokens, p(plan_.wte), B, Tn, C, vocab_begin_, vocab_begin_ + vocab_local_);
  stream_.reduce_partials(lookup, encoded, B);  // vocabulary-parallel lookup
  const T* positions = positions_.empty() ? p(plan_.wpe) : positions_.data();
  if (positions) positions_forward(encoded, positions, R, stream_.first_row(B), Tn, C);
  const Arenas<T> ar = arenas();
  if (cfg_.finetune.method == FinetuneMethod::DoRA)  // row norms that span the tensor-parallel ranks
    for (const auto& b : plan_.blocks) b->for_each_adapter([&](const LinearAdapter<T>& x) { x.refresh_norms(ar, stream_.tp()); });
  for (int l = 0; l < cfg_.n_layers; l++) plan_.blocks[l]->forward(ar, block_input(l), B);
  plan_.lnf.forward(ar, block_input(cfg_.n_layers), R);
  const T* lnf = stream_.gather(a(plan_.lnf.out), a(plan_.lnf_full), B);  // (N,C)
  linear_forward(a(plan_.logits), lnf, p(plan_.head()), static_cast<T*>(nullptr), N, C, V);
  const TensorParallel<T>& tp = stream_.tp();
  return crossentropy_forward<T>(
             a(plan_.logits), a(plan_.losses), targets, N, V, vocab_begin_, ce_rows_.data(),
             [&tp](T* x, int n) { tp.all_reduce_max(x, std::size_t(n)); },
             [&tp](T* x, int n) { tp.all_reduce_sum(x, std::size_t(n)); }) /
         divisor;
}

template <class T>
void GPT<T>::backward(const std::function<void(int layer)>& grads_final) {
  const auto final_from = [&](int layer) {
    if (grads_final) grads_final(layer);
  };
  if (batch_ == 0) throw std::logic_error("GPT::backward called before forward");
  const int B = batch_, Tn = cfg_.seq_len, C = cfg_.d_model, N = B * Tn, R = stream_.rows(B),
            V = vocab_local_;
  const Arenas<T> ar = arenas();
  T* dlogits = a(plan_.logits);  // probabilities become their own gradient
  crossentropy_backward(dlogits, targets_.data(), N, V, vocab_begin_, divisor_);
  T* dlnf = stream_.partial_buffer(dln_, full_);  // vocabulary-parallel head: summed over shards
  linear_backward(dlnf, g(plan_.head()), static_cast<T*>(nullptr), dlogits, a(plan_.lnf_full),
                  p(plan_.head()), N, C, V);
  stream_.reduce_partials(dlnf, dln_, B);
  {
    const PhaseScope phase(Phase::elementwise);
    std::fill(dres_, dres_ + std::size_t(R) * C, T(0));
  }
  plan_.lnf.backward(ar, dres_, dln_, block_input(cfg_.n_layers), R);
  final_from(cfg_.n_layers);
  for (int l = cfg_.n_layers - 1; l >= 0; l--) {
    if (l >= lowest_trainable_) plan_.blocks[l]->backward(ar, block_input(l), dres_, B);
    final_from(l);
  }
  // Replicated embeddings take their gradient from every row, so every rank computes the same.
  if (lowest_trainable_ < 0) {
    const T* dembed = stream_.gather(dres_, full_, B);  // (N,C)
    if (T* dwte = g(plan_.wte))
      embedding_backward(dwte, dembed, tokens_.data(), B, Tn, C, vocab_begin_, vocab_begin_ + vocab_local_);
    if (T* dwpe = g(plan_.wpe)) positions_backward(dwpe, dembed, N, 0, Tn, C);
  }
  final_from(-1);
  batch_ = 0;  // the probabilities were consumed: a second backward needs a new forward
}

// Each partial tensor goes into its full shape's slot of one buffer (zeros where this rank holds
// nothing), one all-reduce sums the slots, and each rank takes its shard back: the ranks holding
// the same elements end with the same sum.
template <class T>
void GPT<T>::reduce_tensor_parallel_grads() {
  if (partial_.empty()) return;
  std::fill(partial_pack_.begin(), partial_pack_.end(), T(0));
  std::size_t slot = 0;
  for (const TensorInfo* t : partial_) {
    insert_shard(g(t->offset), *t, partial_pack_.data() + slot);
    slot += t->full_numel;
  }
  stream_.tp().all_reduce_sum(partial_pack_.data(), partial_pack_.size());
  slot = 0;
  for (const TensorInfo* t : partial_) {
    extract_shard(partial_pack_.data() + slot, *t, g(t->offset));
    slot += t->full_numel;
  }
}

template <class T>
double GPT<T>::aux_loss() const {
  double sum = 0;
  for (const auto& b : plan_.blocks) {
    if (const RoutingStats* r = b->routing()) sum += r->aux_loss + r->z_loss;
  }
  return sum;
}

template <class T>
void GPT<T>::init_adapters() {
  const Arenas<T> ar = arenas();
  for (const auto& b : plan_.blocks) b->for_each_adapter([&](const LinearAdapter<T>& x) { x.init_from_base(ar, stream_.tp()); });
}

template <class T>
void GPT<T>::merge_adapters(int sign) {
  const Arenas<T> ar = arenas();
  for (const auto& b : plan_.blocks) b->for_each_adapter([&](const LinearAdapter<T>& x) { x.merge(ar, sign, stream_.tp()); });
}

template <class T>
void GPT<T>::hold_adapter_norms(bool hold) {
  for (const auto& b : plan_.blocks) b->for_each_adapter([&](const LinearAdapter<T>& x) { x.hold_norms(hold); });
}

template <class T>
void GPT<T>::zero_grad() {
  const PhaseScope phase(Phase::optimizer);  // the optimizer's share of the step, as in PyTorch
  T* g = grads_.data();
  parallel_items(std::int64_t(grads_.size()), 1, [g](std::int64_t b, std::int64_t e) { std::fill(g + b, g + e, T(0)); });
}

template ModelBufferSizes model_buffer_sizes<float>(const ModelPlan<float>&, const ModelConfig&, int, int);
template ModelBufferSizes model_buffer_sizes<double>(const ModelPlan<double>&, const ModelConfig&, int, int);
template class GPT<float>;
template class GPT<double>;

}  // namespace ellm
