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
// reading a range of groups streams contiguous memory). For each 32-column block b a group holds
// its "chunk block": the 16 rows' quant bytes interleaved in 4-byte chunks (chunk c holds bytes
// [4c, 4c+4) of rows 0..15, 64 bytes), so one 512-bit load feeds 16 rows' dot products (one 32-bit
// lane per row) and two 256-bit loads do for AVX2. Blocks come in pairs: the chunk blocks of b and
// b+1, then their 2 x 16 fp16 scales (64 bytes). A group is thus one sequential stream, which the
// hardware prefetchers follow, and every chunk stays 64-byte aligned (the data is allocated on a
// 64-byte boundary; an odd last block is followed by its scales alone, so with an odd block count
// the groups after the first are not aligned). Q4_0 keeps
// ggml's nibble order inside a row's 16 bytes. A last partial group is padded with zero rows
// (scale 0).
inline constexpr int kRowGroup = 16;
inline constexpr int kChunks8 = 8, kChunks4 = 4;      // 4-byte chunks per row and block
inline constexpr int kChunkBytesQ8 = kRowGroup * 32;  // 512
inline constexpr int kChunkBytesQ4 = kRowGroup * 16;  // 256
inline constexpr int kScaleBytes = kRowGroup * 2;     // 32
// Decode (one token) is bound by how many cache-line fills are in flight. A decode tile reads
// kDecodeGroups row groups side by side. Q4_0, whose dot products cost the most per byte, also
// prefetches each group kDecodePrefetchBlocks blocks (about 1 KB) ahead of its loads: with the
// dot products filling the core's window, the hardware prefetchers alone keep too few fills in
// flight. Q8_0 runs faster without (its prefetches cost more issue slots than they save). Both
// measured side by side (docs/PERFORMANCE.md, "Decode prefetch"). Threads take groups in
// multiples of the larger group count.
template <bool Q8>
inline constexpr int kDecodeGroups = Q8 ? 2 : 4;
template <bool Q8>
inline constexpr int kDecodePrefetchBlocks = Q8 ? 0 : 4;  // even: a prefetch covers a block pair; 0: none
inline constexpr int kDecodeGroupsMultiple = 4;

namespace {  // internal linkage: each kernel file gets its own copy, compiled for its target
constexpr std::size_t pair_bytes(int chunk_bytes) { return 2 * std::size_t(chunk_bytes) + 2 * kScaleBytes; }
constexpr std::size_t group_bytes(int nb, int chunk_bytes) { return std::size_t(nb) * (chunk_bytes + kScaleBytes); }
constexpr std::size_t chunk_offset(int b, int chunk_bytes) {
  return std::size_t(b / 2) * pair_bytes(chunk_bytes) + std::size_t(b % 2) * chunk_bytes;
}
constexpr std::size_t scale_offset(int nb, int b, int chunk_bytes) {
  const bool alone = b % 2 == 0 && b + 1 == nb;  // an odd count's last block: its chunk block, its scales
  return std::size_t(b / 2) * pair_bytes(chunk_bytes) + (alone ? chunk_bytes : 2 * std::size_t(chunk_bytes) + std::size_t(b % 2) * kScaleBytes);
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
