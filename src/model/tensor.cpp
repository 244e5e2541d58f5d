#include "model/tensor.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <stdexcept>

#include "util/rng.hpp"

namespace ellm {

TensorDecl weight(std::string name, std::vector<int> full_shape, Init init) {
  TensorDecl d{std::move(name), std::move(full_shape), std::move(init)};
  d.decay = true;
  return d;
}
TensorDecl bias(std::string name, std::vector<int> full_shape) {
  return {std::move(name), std::move(full_shape), Init::zeros()};
}
TensorDecl gain(std::string name, std::vector<int> full_shape) {
  return {std::move(name), std::move(full_shape), Init::ones()};
}

namespace {
std::size_t product(const std::vector<int>& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
}
}  // namespace

std::size_t ArenaLayout::add(TensorDecl decl) {
  TensorInfo t;
  static_cast<TensorDecl&>(t) = std::move(decl);
  t.shape = t.full_shape;
  if (t.shard.dim >= 0) {
    t.shape[t.shard.dim] = 0;
    for (const auto& [begin, end] : t.shard.ranges) t.shape[t.shard.dim] += end - begin;
  }
  t.numel = product(t.shape);
  t.full_numel = product(t.full_shape);
  if (split_ != kAbsent && !t.trainable) {
    t.offset = split_ + frozen_;
    frozen_ += t.numel;
  } else {
    t.offset = trainable_;
    trainable_ += t.numel;
    if (split_ != kAbsent && trainable_ > split_)
      throw std::logic_error("ArenaLayout: the trainable tensors exceed the split they were laid out for");
  }
  tensors_.push_back(std::move(t));
  return tensors_.back().offset;
}

std::size_t ArenaLayout::add_buffer(std::string name, std::vector<int> shape, int layer) {
  TensorDecl d{std::move(name), std::move(shape), Init::zeros()};
  d.trainable = false;
  d.layer = layer;
  return add(std::move(d));
}

std::size_t Declarer::param(TensorDecl decl) const {
  decl.name = prefix + decl.name;
  decl.layer = layer;
  if (frozen && !decl.adapter) decl.trainable = false;
  return params.add(std::move(decl));
}

template <class T>
void init_tensors(const ArenaLayout& params, T* arena, std::uint64_t seed) {
  Rng base_rng(seed), adapter_rng(seed ^ 0xada9'7e25'0000'0000ULL);
  std::vector<T> full;
  for (const TensorInfo& t : params.tensors()) {
    T* w = arena + t.offset;
    Rng& rng = t.adapter ? adapter_rng : base_rng;
    switch (t.init.kind) {
      case Init::Kind::Constant:
        std::fill(w, w + t.numel, T(t.init.value));
        continue;
      case Init::Kind::Normal:
        full.resize(t.full_numel);
        for (T& x : full) x = T(rng.normal() * t.init.value);
        break;
      case Init::Kind::Uniform:
        full.resize(t.full_numel);
        for (T& x : full) x = T((2 * rng.uniform() - 1) * t.init.value);
        break;
      case Init::Kind::Custom:
        full.resize(t.full_numel);
        for (std::size_t i = 0; i < full.size(); i++) full[i] = T(t.init.fn(i, t.full_shape));
        break;
    }
    extract_shard(full.data(), t, w);
  }
}
template void init_tensors<float>(const ArenaLayout&, float*, std::uint64_t);
template void init_tensors<double>(const ArenaLayout&, double*, std::uint64_t);

ParamCounts count_params(const ArenaLayout& params) {
  ParamCounts c;
  for (const TensorInfo& t : params.tensors()) {
    const double n = double(t.full_numel);
    c.total += n;
    if (t.trainable) c.trainable += n;
    c.active_per_token += n * t.active_fraction;
  }
  return c;
}

}  // namespace ellm
