#include "infer/linear_store.hpp"

#include <stdexcept>

namespace ellm {
namespace {

// The declared name of the tensor holding offset w (a linear's first weight part, or one expert's
// slice of a mixture's expert tensor).
std::string tensor_name(const ArenaLayout& layout, std::size_t w) {
  for (const TensorInfo& t : layout.tensors()) {
    if (t.offset == w) return t.name;
    if (t.offset < w && w < t.offset + t.numel) return t.name + "' (from element " + std::to_string(w - t.offset) + ")";
  }
  return "at offset " + std::to_string(w);
}

}  // namespace

QuantizedLinears::QuantizedLinears(quant::Format f, const std::vector<LinearShape>& layers,
                                   const float* params, const ArenaLayout& layout)
    : format_(f) {
  const int block = quant::block_elems(f);
  for (const LinearShape& l : layers) {
    if (weights_.count(l.w)) continue;  // one weight read by two layers (none today)
    if (l.in % block != 0) {
      throw std::invalid_argument(std::string("inference weights ") + quant::format_name(f) +
                                  ": tensor '" + tensor_name(layout, l.w) + "' has " + std::to_string(l.in) +
                                  " input columns, not a multiple of the format's " + std::to_string(block) +
                                  "-weight block (choose model.d_model, model.d_ff and head sizes as multiples of " +
                                  std::to_string(block) + " per tensor-parallel rank, or a float format)");
    }
    quant::QMatrix q = quant::QMatrix::quantize(f, params + l.w, l.out, l.in);
    bytes_ += q.bytes();
    fp32_elems_ += std::size_t(l.out) * l.in;
    weights_.emplace(l.w, std::move(q));
  }
}

bool QuantizedLinears::matmul(std::size_t w, int out, int in, const float* x, int N, float* y) const {
  const auto it = weights_.find(w);
  if (it == weights_.end()) return false;
  if (it->second.rows() != out || it->second.cols() != in) throw std::logic_error("QuantizedLinears: shape mismatch");
  it->second.matmul(x, N, y);
  return true;
}

}  // namespace ellm
