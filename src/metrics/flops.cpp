#include "metrics/flops.hpp"

namespace ellm {

double matmul_weights(const ModelConfig& m) {
  const double C = m.d_model, F = m.d_ff;
  const double mlp_in = m.activation == Activation::SwiGLU ? 2 * F : F;
  const double per_layer = 3 * C * C + C * C + mlp_in * C + F * C;
  return m.n_layers * per_layer + double(m.vocab_size) * C;
}

double forward_flops_per_token(const ModelConfig& m) {
  const double attention = 2.0 * m.n_layers * double(m.seq_len) * m.d_model;
  return 2.0 * matmul_weights(m) + attention;
}

double training_flops_per_token(const ModelConfig& m) { return 3.0 * forward_flops_per_token(m); }

}  // namespace ellm
