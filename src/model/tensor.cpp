#include "model/tensor.hpp"

#include <functional>
#include <numeric>

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
  t.offset = total_;
  total_ += t.numel;
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
  return params.add(std::move(decl));
}

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
