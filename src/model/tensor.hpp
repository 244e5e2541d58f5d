// Tensors that declare themselves. Every tensor of the model is declared where a module adds it
// to a flat arena (llm.c-style: parameters, gradients, AdamW moments and activations each live in
// one buffer, a tensor is an offset): its full N-dimensional shape, the shard of it this rank
// keeps, how it starts, whether it trains, whether AdamW decays it, and which ranks hold copies of
// it and so must agree on its gradient. Initialisation, gradient buckets, the gradient norm, AdamW
// and the parameter counts all follow from these declarations; nothing is inferred from a name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ellm {

inline constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);  // tensor the variant lacks

// How a tensor starts. The whole (tp = 1) tensor is made and this rank keeps its shard, so every
// tensor-parallel layout starts from the same model.
struct Init {
  enum class Kind { Normal, Uniform, Constant, Custom };
  Kind kind = Kind::Constant;
  double value = 0;  // Normal: the standard deviation; Uniform: the bound b of U(−b, b); Constant: the value
  std::string name;  // Custom: what it is ("mamba A_log = log(1..N)"), for docs and messages
  // Custom: the value of element `index` (row-major) of the full tensor of shape `full_shape`.
  std::function<double(std::size_t index, const std::vector<int>& full_shape)> fn;

  static Init normal(double std) { return {Kind::Normal, std, "normal", {}}; }
  static Init uniform(double bound) { return {Kind::Uniform, bound, "uniform", {}}; }
  static Init zeros() { return {Kind::Constant, 0.0, "zeros", {}}; }
  static Init ones() { return {Kind::Constant, 1.0, "ones", {}}; }
  static Init constant(double value) { return {Kind::Constant, value, "constant", {}}; }
  static Init custom(std::string name, decltype(fn) fn) {
    return {Kind::Custom, 0.0, std::move(name), std::move(fn)};
  }
};

// The part of the full tensor this rank holds: the listed ranges of dimension `dim`,
// concatenated in order (an expert tensor (E, out, in) split over expert-parallel ranks is
// dim 0 with this rank's experts). dim = -1: the whole tensor.
struct Shard {
  int dim = -1;
  std::vector<std::pair<int, int>> ranges;  // [begin, end) along dim, ascending
  int replicas = 1;  // tensor-parallel ranks holding this same shard (MQA/GQA kv heads, kv < tp)
};

// The ranks that hold copies of a trainable tensor and sum their gradients after backward. Each
// group is one set of gradient buckets (train/grad_sync.hpp): all data-parallel ranks, or for an
// expert split over the expert-parallel ranks the dp/ep ranks holding the same experts.
enum class ReplicaGroup { DataParallel, ExpertDataParallel };

// Everything a module says about a parameter when it creates it.
struct TensorDecl {
  std::string name;              // for reports and messages only
  std::vector<int> full_shape;   // the tensor at tp = 1
  Init init;
  Shard shard = {};
  bool trainable = true;         // frozen: no gradient bucket, no AdamW moments
  bool decay = false;            // AdamW weight decay applies (matrices, embeddings)
  ReplicaGroup group = ReplicaGroup::DataParallel;
  // Each tensor-parallel rank computes only part of this tensor's gradient (a replicated weight
  // fed by sharded heads, a norm that sees 1/tp of the tokens): the ranks holding the same shard
  // sum it once after backward (GPT::reduce_tensor_parallel_grads).
  bool partial_grad = false;
  // Share of the tokens that use it (1 for dense layers; an MoE expert: top_k / experts).
  double active_fraction = 1.0;
  int layer = -1;  // position in the stack: -1 embeddings, 0…L−1 blocks, L the final norm
  // A fine-tuning adapter's tensor (LoRA's A and B, DoRA's magnitude): absent from the base
  // model's checkpoint, saved alone in PEFT's adapter layout (docs/PEFT.md).
  bool adapter = false;
  // What an adapter tensor adapts, declared by the adapter (io/peft.hpp names it by this).
  struct AdapterSite {
    enum class Factor { A, B, Magnitude };
    Factor factor = Factor::A;
    std::string base;      // the base weight's tensor ("h.0.attn.kv.w")
    int row0 = 0, rows = 0;  // the adapted rows of the full (tp = 1) base weight
  };
  AdapterSite site = {};
  double lr_scale = 1.0;  // the learning rate's factor (LoRA+: B at lora_plus_ratio × lr)

  TensorDecl&& sharded(Shard s) && { shard = std::move(s); return std::move(*this); }
  TensorDecl&& partial(bool is_partial = true) && { partial_grad = is_partial; return std::move(*this); }
  TensorDecl&& frozen(bool is_frozen = true) && { trainable = !is_frozen; return std::move(*this); }
  TensorDecl&& adapter_of_base(AdapterSite of, double lr_factor = 1.0) && {
    adapter = true;
    site = std::move(of);
    lr_scale = lr_factor;
    return std::move(*this);
  }
};

// The usual kinds, by what they are: a matrix in a GEMM (decayed), a bias (zeros), a norm gain.
TensorDecl weight(std::string name, std::vector<int> full_shape, Init init);
TensorDecl bias(std::string name, std::vector<int> full_shape);
TensorDecl gain(std::string name, std::vector<int> full_shape);

struct TensorInfo : TensorDecl {
  std::vector<int> shape;  // this rank's
  std::size_t offset = 0;
  std::size_t numel = 0;
  std::size_t full_numel = 0;
  bool replicated() const { return shard.dim < 0; }
  // Tensor-parallel ranks that hold each of this rank's elements (all of them when replicated).
  int copies(int tp_size) const { return replicated() ? tp_size : shard.replicas; }
};

struct ArenaRange {
  std::size_t begin, end;  // [begin, end) of an arena
};

// Appends tensors back to back. Split at `trainable_total` (the size of the trainable tensors,
// known from a first layout of the same model): trainable tensors fill [0, trainable_total) and
// frozen ones follow, each part in declaration order, so the gradient arena and the optimizer's
// moments need cover only the prefix and a frozen tensor has no gradient at all (Arenas::g).
// Unsplit (kAbsent): everything in declaration order.
class ArenaLayout {
 public:
  explicit ArenaLayout(std::size_t trainable_total = kAbsent) : split_(trainable_total) {}
  std::size_t add(TensorDecl decl);  // returns the tensor's offset
  // An activation or workspace buffer: a name and a shape, nothing to initialise or train.
  std::size_t add_buffer(std::string name, std::vector<int> shape, int layer = -1);
  std::size_t total() const { return split_ == kAbsent ? trainable_ : split_ + frozen_; }
  // The elements of the trainable tensors: what a gradient arena must hold (split layouts: the
  // prefix they fill; unsplit: everything, frozen tensors included).
  std::size_t trainable_total() const { return split_ == kAbsent ? total() : trainable_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  std::vector<TensorInfo> tensors_;
  std::size_t split_;
  std::size_t trainable_ = 0, frozen_ = 0;  // unsplit: everything counts as trainable_
};

// A module's view of the parameter and activation arenas while it declares its tensors: names
// get the module's prefix and tensors its layer.
struct Declarer {
  ArenaLayout& params;
  ArenaLayout& acts;
  std::string prefix;  // "h.3.attn."
  int layer = -1;
  // The fine-tuning method freezes this part of the model (FinetuneConfig::trains_base): every
  // tensor declared here is frozen but adapters (TensorDecl::adapter).
  bool frozen = false;
  std::size_t param(TensorDecl decl) const;
  std::size_t buffer(const std::string& name, std::vector<int> shape) const {
    return acts.add_buffer(prefix + name, std::move(shape), layer);
  }
  Declarer sub(const std::string& name) const { return {params, acts, prefix + name, layer, frozen}; }
  // The same place, frozen as well when `trains` is false (a part that freezing leaves out).
  Declarer frozen_unless(bool trains) const { return {params, acts, prefix, layer, frozen || !trains}; }
};

// Calls f(full_offset, local_offset, length) for each contiguous run of the full tensor
// (row-major) that this rank holds, in local order.
template <class F>
void for_each_shard_run(const TensorInfo& t, F&& f) {
  if (t.replicated()) {
    f(std::size_t(0), std::size_t(0), t.numel);
    return;
  }
  std::size_t outer = 1, inner = 1;
  for (int d = 0; d < t.shard.dim; d++) outer *= t.full_shape[d];
  for (std::size_t d = t.shard.dim + 1; d < t.full_shape.size(); d++) inner *= t.full_shape[d];
  const std::size_t span = t.full_shape[t.shard.dim];
  std::size_t local = 0;
  for (std::size_t o = 0; o < outer; o++) {
    for (const auto& [begin, end] : t.shard.ranges) {
      const std::size_t n = std::size_t(end - begin) * inner;
      f((o * span + begin) * inner, local, n);
      local += n;
    }
  }
}

// This rank's part of a full tensor (row-major in full_shape) into `local`, and back.
template <class T>
void extract_shard(const T* full, const TensorInfo& t, T* local) {
  for_each_shard_run(t, [&](std::size_t f, std::size_t l, std::size_t n) {
    for (std::size_t i = 0; i < n; i++) local[l + i] = full[f + i];
  });
}
template <class T>
void insert_shard(const T* local, const TensorInfo& t, T* full) {
  for_each_shard_run(t, [&](std::size_t f, std::size_t l, std::size_t n) {
    for (std::size_t i = 0; i < n; i++) full[f + i] = local[l + i];
  });
}

// Every tensor of `params` as it declared (TensorDecl::init) into `arena`: the whole tensor is
// drawn or computed and this rank keeps its shard, so every tensor-parallel layout starts from
// the same model; random tensors draw from one stream seeded by `seed`, in declaration order
// (adapters from a second one, so that adding adapters leaves the base model as it was).
template <class T>
void init_tensors(const ArenaLayout& params, T* arena, std::uint64_t seed);

// Parameter counts from the declarations (this rank's tensors; divide shards back to the model
// with full_numel). `active` weighs each tensor by the share of tokens that use it.
struct ParamCounts {
  double total = 0, trainable = 0, active_per_token = 0;
};
ParamCounts count_params(const ArenaLayout& params);  // of the full (tp = 1) model

}  // namespace ellm
