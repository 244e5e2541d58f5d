#include "metrics/flops.hpp"

#include "model/block.hpp"

namespace ellm {

ModuleCost model_cost(const ModelConfig& m) {
  ModuleCost c;
  for (int l = 0; l < m.n_layers; l++) c += block_cost(m.layer(l));
  c.matmul_weights += double(m.vocab_size) * m.d_model;  // the LM head
  return c;
}

double matmul_weights(const ModelConfig& m) { return model_cost(m).matmul_weights; }

double forward_flops_per_token(const ModelConfig& m) {
  const ModuleCost c = model_cost(m);
  return 2.0 * c.matmul_weights + c.other_flops_per_token;
}

double training_flops_per_token(const ModelConfig& m) { return 3.0 * forward_flops_per_token(m); }

double kv_cache_bytes_per_token(const ModelConfig& m, int bytes_per_element) {
  return model_cost(m).cache_elems_per_token * bytes_per_element;
}

}  // namespace ellm
