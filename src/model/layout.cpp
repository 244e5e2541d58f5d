#include "model/layout.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace ellm {

std::size_t ArenaLayout::add(const std::string& name, std::vector<int> full_shape, bool decay,
                             int layer, Shard shard) {
  std::vector<int> shape = full_shape;
  if (shard.dim >= 0) {
    shape[shard.dim] = 0;
    for (const auto& [begin, end] : shard.ranges) shape[shard.dim] += end - begin;
  }
  const std::size_t numel =
      std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
  tensors_.push_back({name, std::move(shape), total_, numel, decay, layer, std::move(full_shape),
                      std::move(shard)});
  total_ += numel;
  return tensors_.back().offset;
}

template <class T>
void extract_shard(const T* full, const TensorInfo& t, T* local) {
  if (t.replicated()) {
    std::copy(full, full + t.numel, local);
    return;
  }
  // Rows of a 2-D (or 1-D) tensor: dim 0 takes whole rows, dim 1 takes columns of every row.
  const int rows = t.full_shape[0], cols = t.full_shape.size() > 1 ? t.full_shape[1] : 1;
  for (int r = 0; r < rows; r++) {
    for (const auto& [begin, end] : t.shard.ranges) {
      if (t.shard.dim == 0 && (r < begin || r >= end)) continue;
      const int c0 = t.shard.dim == 1 ? begin : 0, c1 = t.shard.dim == 1 ? end : cols;
      local = std::copy(full + std::size_t(r) * cols + c0, full + std::size_t(r) * cols + c1, local);
    }
  }
}
template void extract_shard<float>(const float*, const TensorInfo&, float*);
template void extract_shard<double>(const double*, const TensorInfo&, double*);

int fc_in_width(const ModelConfig& m) {
  return m.activation == Activation::SwiGLU ? 2 * m.d_ff : m.d_ff;
}

}  // namespace ellm
