// Quantized copies of a decoder's linear layers (docs/INFERENCE.md): every weight the forward
// serves (Decoder::linear_layers: the projections of the token and channel mixers and the LM
// head) quantized once, at load, from the fp32 arena to one format (src/quant/qmatrix.hpp), and
// multiplied from there. Embeddings, norms, biases, Mamba's x_proj/dt_proj/conv, MLA's absorbed
// W_uk/W_uv, RWKV's low-rank mixes and per-channel vectors stay fp32 in the arena.
#pragma once
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "infer/decoder.hpp"
#include "model/module.hpp"
#include "quant/qmatrix.hpp"

namespace ellm {

class QuantizedLinears final : public LinearWeights {
 public:
  // Quantizes each of `layers` from `params` (laid out as `layout`) to f. Throws
  // std::invalid_argument naming the tensor when an integer format meets an input width that is
  // not a multiple of its 32-weight block.
  QuantizedLinears(quant::Format f, const std::vector<LinearShape>& layers, const float* params,
                   const ArenaLayout& layout);
  bool matmul(std::size_t w, int out, int in, const float* x, int N, float* y) const override;

  quant::Format format() const { return format_; }
  std::size_t bytes() const { return bytes_; }            // the served weights as stored
  std::size_t fp32_elems() const { return fp32_elems_; }  // the same weights' element count

 private:
  quant::Format format_;
  std::unordered_map<std::size_t, quant::QMatrix> weights_;  // by arena offset
  std::size_t bytes_ = 0, fp32_elems_ = 0;
};

}  // namespace ellm
