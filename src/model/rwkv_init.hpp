// RWKV-6's layer-dependent initialisation (RWKV-LM, RWKV_Tmix_x060 / RWKV_CMix_x060), shared by
// the time mix and the channel mix; docs/ATTENTION_FREE.md lists every tensor's.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm::rwkv {

// The reference's two depth ratios: 0 at the first layer → 1 at the last, and 1 → 1/L.
inline double ratio_0_to_1(const ModelConfig& m, int layer) {
  return m.n_layers > 1 ? double(layer) / (m.n_layers - 1) : 0.0;
}
inline double ratio_1_to_almost0(const ModelConfig& m, int layer) {
  return 1.0 - double(layer) / m.n_layers;
}

// A token-shift mix μ (rows × C) = 1 − ((c/C)^power + offset), power and offset per row.
template <class RowRule>
Init shift_mix(std::string name, RowRule rule) {
  return Init::custom(std::move(name), [rule](std::size_t i, const std::vector<int>& shape) {
    const int C = shape.back();
    const auto [power, offset] = rule(int(i / C));
    return 1.0 - (std::pow(double(i % C) / C, power) + offset);
  });
}

// Not weight-decayed: RWKV-LM keeps the mixes, decays, bonus and low-rank factors out of it.
inline TensorDecl undecayed(TensorDecl t) {
  t.decay = false;
  return t;
}

}  // namespace ellm::rwkv
