// The FLOPs convention, written down once (docs/ARCHITECTURE.md repeats it):
// a multiply-add is 2 FLOPs; training costs 3× the forward (backward = 2× forward);
// forward FLOPs per token = 2 · (weights used in matrix products, LM head included)
//                         + each module's other counted FLOPs — for attention the score and
//                           value products: 2 · H · (dk + dv) · (keys a query sees, averaged over
//                           positions 0…T−1) per layer — (T+1)/2 keys for full causal attention,
//                           fewer with a window or NSA; for Mamba the convolution and the
//                           scan's multiply-adds, D·(2K + 6N + 3) (docs/ATTENTION_FREE.md).
// Every module reports its own (ModuleCost: model/token_mixer.hpp *_cost, model/mlp.cpp,
// model/block.hpp block_cost); model_cost sums them over the layers as configured.
// Elementwise work (norms, activations, softmax, optimizer) is not counted.
// PaLM's 12·L·T·C attention term counts the masked half too; we count what a causal kernel
// that skips masked entries must compute.
#pragma once
#include "efficientllm/config.hpp"
#include "model/module.hpp"

namespace ellm {

ModuleCost model_cost(const ModelConfig& m);            // every block's, plus the LM head

double matmul_weights(const ModelConfig& m);           // parameters that take part in GEMMs
double forward_flops_per_token(const ModelConfig& m);
double training_flops_per_token(const ModelConfig& m);  // 3 × forward
// KV-cache bytes one past token costs at inference, all layers (per variant: docs/ATTENTION.md);
// every run report carries it (model.kv_cache_bytes_per_token).
double kv_cache_bytes_per_token(const ModelConfig& m, int bytes_per_element = 4);

}  // namespace ellm
