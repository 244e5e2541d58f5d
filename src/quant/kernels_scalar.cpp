// The scalar path: plain C++ over the interleaved layout (quant/kernels.hpp), the fallback for
// CPUs without AVX2 and the layout's own reference for the SIMD paths.
#include "quant/blocks.hpp"
#include "quant/kernels.hpp"

namespace ellm::quant {
namespace {

// One row's integer dot product over one group block: row r of the group, activations x.
template <int Chunks, class Quant>
int group_row_isum(const std::uint8_t* chunks, int r, const ActBlock& x, Quant quant) {
  int isum = 0;
  for (int c = 0; c < Chunks; c++)
    for (int i = 0; i < 4; i++) isum += quant(chunks[64 * c + 4 * r + i], 4 * c + i, x);
  return isum;
}

template <int Chunks, int ChunkBytes, class Quant>
void int_kernel(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
                float* y, int ldy, Quant quant) {
  const int nb = cols / kQK;
  for (int g = g0; g < g1; g++)
    for (int r = 0; r < kRowGroup && g * kRowGroup + r < rows; r++)
      for (int t = 0; t < n; t++) {
        float sum = 0;
        for (int b = 0; b < nb; b++) {
          const std::uint8_t* group = w + std::size_t(g) * group_bytes(nb, ChunkBytes);
          std::uint16_t d;
          __builtin_memcpy(&d, group + scale_offset(nb, b, ChunkBytes) + 2 * r, 2);
          const ActBlock& xb = x[std::size_t(t) * nb + b];
          sum += float(group_row_isum<Chunks>(group + chunk_offset(b, ChunkBytes), r, xb, quant)) * (fp16_to_fp32(d) * xb.d);
        }
        y[std::size_t(t) * ldy + g * kRowGroup + r] = sum;
      }
}

void q8_0(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
          float* y, int ldy) {
  int_kernel<kChunks8, kChunkBytesQ8>(w, g0, g1, rows, cols, x, n, y, ldy,
                                      [](std::uint8_t q, int j, const ActBlock& xb) {
                                        return int(std::int8_t(q)) * int(xb.qs[j]);
                                      });
}

void q4_0(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
          float* y, int ldy) {
  int_kernel<kChunks4, kChunkBytesQ4>(w, g0, g1, rows, cols, x, n, y, ldy,
                                      [](std::uint8_t q, int j, const ActBlock& xb) {
                                        return ((q & 0x0F) - 8) * int(xb.qs[j]) +
                                               ((q >> 4) - 8) * int(xb.qs[j + 16]);
                                      });
}

template <class W, float (*Dot)(const W*, const float*, int)>
void float_kernel(const W* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy) {
  for (int t = 0; t < n; t++)
    for (int r = r0; r < r1; r++)
      y[std::size_t(t) * ldy + r] = Dot(w + std::size_t(r) * cols, x + std::size_t(t) * cols, cols);
}

void quantize_act(const float* x, int n, int cols, ActBlock* out) {
  const int nb = cols / kQK;
  for (int t = 0; t < n; t++)
    for (int b = 0; b < nb; b++) {
      BlockQ8_0 q;
      quantize_row_q8_0(x + std::size_t(t) * cols + b * kQK, &q, kQK);
      ActBlock& a = out[std::size_t(t) * nb + b];
      a.d = fp16_to_fp32(q.d);
      a.sum = 0;
      for (int j = 0; j < kQK; j++) a.sum += (a.qs[j] = q.qs[j]);
    }
}

}  // namespace

KernelTable scalar_kernels() {
  return {quantize_act, q8_0, q4_0, float_kernel<float, dot_f32>, float_kernel<std::uint16_t, dot_bf16_f32>,
          float_kernel<std::uint16_t, dot_f16_f32>};
}

}  // namespace ellm::quant
