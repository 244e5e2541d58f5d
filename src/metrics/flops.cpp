#include "metrics/flops.hpp"

#include "model/mixer.hpp"

namespace ellm {

double matmul_weights(const ModelConfig& m) {
  const double C = m.d_model, F = m.d_ff;
  const double mlp_in = m.activation == Activation::SwiGLU ? 2 * F : F;
  const double attn_out = C * double(m.n_heads) * m.head_dim();  // every variant's width is H·hs
  const double per_layer = attention_cost(m).matmul_weights + attn_out + mlp_in * C + F * C;
  return m.n_layers * per_layer + double(m.vocab_size) * C;
}

double forward_flops_per_token(const ModelConfig& m) {
  return 2.0 * matmul_weights(m) + m.n_layers * attention_cost(m).attention_flops_per_token;
}

double training_flops_per_token(const ModelConfig& m) { return 3.0 * forward_flops_per_token(m); }

double kv_cache_bytes_per_token(const ModelConfig& m, int bytes_per_element) {
  return m.n_layers * attention_cost(m).kv_cache_elems_per_token * bytes_per_element;
}

}  // namespace ellm
