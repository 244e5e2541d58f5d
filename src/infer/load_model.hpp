// A run's model for inference: its declared initialisers (seeded as training seeds them), then
// model.from_hf's weights and model.init_from's checkpoint, as a training run would start.
#pragma once
#include "efficientllm/config.hpp"
#include "infer/decoder.hpp"

namespace ellm {

// Fills dec's parameters (this rank's shard), whole again after Decoder::release_fp32_linears. Throws hf::Error or st::FileError for a bad
// directory or checkpoint (naming the file and tensor).
void load_run_weights(const RunConfig& run, Decoder<float>& dec);

}  // namespace ellm
