// A weight matrix stored in one of the inference bit widths (docs/QUANTIZATION.md): fp32; bf16 or
// fp16 (round-to-nearest-even); int8 and int4 in ggml's block layouts Q8_0 and Q4_0, so results
// cross-check with llama.cpp. This is the whole interface the inference engine sees: quantize a
// linear layer's weight (out, in) once at load, then multiply activations by it. Which SIMD path
// runs is chosen at run time (quant/dispatch.hpp); every path is tested against the scalar
// reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

namespace ellm::quant {

// Storage on a 64-byte (cache line, 512-bit vector) boundary, so the kernels' loads never split lines.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};
using AlignedBytes = std::vector<std::uint8_t, CacheLineAllocator<std::uint8_t>>;

enum class Format { F32, BF16, F16, Q8_0, Q4_0 };

const char* format_name(Format f);                          // "fp32", "bf16", "fp16", "int8", "int4"
std::optional<Format> parse_format(std::string_view name);  // the names above
double bits_per_weight(Format f);                           // as stored: Q4_0 is 4.5, Q8_0 is 8.5
int block_elems(Format f);  // weights per block: 32 for Q8_0/Q4_0, 1 for the float formats

class QMatrix {
 public:
  QMatrix() = default;
  // W (rows, cols) row-major fp32, a linear layer's (out, in) weight. cols must be a multiple of
  // block_elems(f). Round-to-nearest quantization.
  static QMatrix quantize(Format f, const float* W, int rows, int cols);

  Format format() const { return format_; }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  std::size_t bytes() const { return data_.size(); }  // the weight bytes as stored

  // W (rows, cols) ← the stored weights in fp32.
  void dequantize(float* W) const;
  // y (n, rows) = x (n, cols) · Wᵀ, overwritten. n = 1 is the decode GEMV, n > 1 prefill.
  // Integer formats quantize x to Q8_0 per block first (as ggml does). Threads: the rank's pool.
  void matmul(const float* x, int n, float* y) const;

 private:
  Format format_ = Format::F32;
  int rows_ = 0, cols_ = 0;
  AlignedBytes data_;  // packed rows (possibly repacked/interleaved for the kernels)
};

}  // namespace ellm::quant
