// What the SIMD paths share: the repacked (interleaved) weight layout of the integer formats, the
// quantized-activation block, and the table of kernels one instruction-set path provides.
// The kernel files (kernels_<isa>.cpp) are compiled each for its own target (CMakeLists.txt) and
// include nothing from the standard library but <cstdint>/<cstring>, so no inline function
// compiled with AVX-512 can leak into code that runs on an AVX2-only CPU.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ellm::quant {

// Integer formats are stored in groups of kRowGroup rows, one group after the other (a thread
// reading a range of groups streams contiguous memory). A group holds, for each 32-column block b,
// its "chunk block": the 16 rows' quant bytes interleaved in 4-byte chunks (chunk c holds bytes
// [4c, 4c+4) of rows 0..15, 64 bytes), so one 512-bit load feeds 16 rows' dot products (one 32-bit
// lane per row) and two 256-bit loads do for AVX2; then, after all the chunk blocks, the blocks'
// fp16 scales (16 per block). Keeping the scales apart keeps every chunk 64-byte aligned (the data
// is allocated on a 64-byte boundary; groups stay aligned when the block count is even). Q4_0
// keeps ggml's nibble order inside a row's 16 bytes. A last partial group is padded with zero rows
// (scale 0).
inline constexpr int kRowGroup = 16;
inline constexpr int kChunks8 = 8, kChunks4 = 4;      // 4-byte chunks per row and block
inline constexpr int kChunkBytesQ8 = kRowGroup * 32;  // 512
inline constexpr int kChunkBytesQ4 = kRowGroup * 16;  // 256
inline constexpr int kScaleBytes = kRowGroup * 2;     // 32
// Row groups a decode (one-token) tile reads side by side: several streams keep more cache-line
// fills in flight than one (kernels_simd.hpp). Q8_0 moves twice Q4_0's bytes per dot product and
// gains from more streams; Q4_0 is nearer its compute limit and loses (measured, PERFORMANCE.md).
// Threads take groups in multiples of the larger.
template <bool Q8>
inline constexpr int kDecodeGroups = Q8 ? 8 : 4;
inline constexpr int kDecodeGroupsMultiple = 8;

namespace {  // internal linkage: each kernel file gets its own copy, compiled for its target
constexpr std::size_t group_bytes(int nb, int chunk_bytes) { return std::size_t(nb) * (chunk_bytes + kScaleBytes); }
constexpr std::size_t chunk_offset(int b, int chunk_bytes) { return std::size_t(b) * chunk_bytes; }
constexpr std::size_t scale_offset(int nb, int b, int chunk_bytes) {
  return std::size_t(nb) * chunk_bytes + std::size_t(b) * kScaleBytes;
}
}  // namespace

// An activation block quantized to Q8_0 (ggml's rules, the scale rounded through fp16 as ggml
// stores it), plus the sum of its quants (Q4_0's "- 8" is applied as -8 * sum).
struct ActBlock {
  float d;
  std::int32_t sum;
  std::int8_t qs[32];
};

// The kernels of one path. Each computes y[t * ldy + r] for the tokens t < n and the rows of
// groups [g0, g1) (integer formats) or rows [r0, r1) (float formats); rows >= `rows` are not
// written. cols is a multiple of 32 for the integer formats.
struct KernelTable {
  // x (n, cols) -> n * cols/32 activation blocks (ggml's Q8_0 rules: round half away from zero).
  void (*quantize_act)(const float* x, int n, int cols, ActBlock* out);
  void (*q8_0)(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
               float* y, int ldy);
  void (*q4_0)(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
               float* y, int ldy);
  void (*f32)(const float* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy);
  void (*bf16)(const std::uint16_t* w, int r0, int r1, int cols, const float* x, int n, float* y,
               int ldy);
  void (*f16)(const std::uint16_t* w, int r0, int r1, int cols, const float* x, int n, float* y,
              int ldy);
};

// One table per path (each defined in its own file); entries a path does not speed up are the
// previous path's.
KernelTable scalar_kernels();
KernelTable avx2_kernels();
KernelTable avx512_kernels();
KernelTable avx512vnni_kernels();
KernelTable avx512bf16_kernels();

}  // namespace ellm::quant
