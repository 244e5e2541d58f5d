// The FLOPs convention, written down once (docs/ARCHITECTURE.md repeats it):
// a multiply-add is 2 FLOPs; training costs 3× the forward (backward = 2× forward);
// forward FLOPs per token = 2 · (weights used in matrix products, LM head included)
//                         + 2 · n_layers · seq_len · d_model for causal attention (QKᵀ and PV,
//                           each over the T/2 keys a token sees on average).
// Elementwise work (norms, activations, softmax, optimizer) is not counted.
// The 12·L·T·C attention term of PaLM's convention counts the masked half too; we count what a
// causal kernel that skips masked tiles must compute.
#pragma once
#include "efficientllm/config.hpp"

namespace ellm {

double matmul_weights(const ModelConfig& m);           // parameters that take part in GEMMs
double forward_flops_per_token(const ModelConfig& m);
double training_flops_per_token(const ModelConfig& m);  // 3 × forward

}  // namespace ellm
