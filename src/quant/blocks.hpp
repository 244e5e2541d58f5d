// The packed weight blocks (ggml's layouts, so bytes cross-check with llama.cpp), the fp16/bf16
// conversions, and the scalar reference quantizer, dequantizer and dot product of every format.
// Every fast path (quant/kernels_*.cpp) is tested against these.
#pragma once
#include <cstdint>

namespace ellm::quant {

inline constexpr int kQK = 32;  // weights per Q8_0/Q4_0 block

// Q8_0: 34 bytes per 32 weights. w[j] = d * qs[j].
struct BlockQ8_0 {
  std::uint16_t d;  // fp16 scale
  std::int8_t qs[kQK];
};
// Q4_0: 18 bytes per 32 weights. Byte j holds weight j (low nibble) and weight j+16 (high nibble);
// w = d * (nibble - 8).
struct BlockQ4_0 {
  std::uint16_t d;  // fp16 scale
  std::uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml block sizes");

// IEEE binary16 and bfloat16 from/to fp32; float -> half/bf16 rounds to nearest, ties to even;
// NaN stays NaN (quiet), overflow goes to infinity.
std::uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(std::uint16_t h);
std::uint16_t fp32_to_bf16(float f);
inline float bf16_to_fp32(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// k (a multiple of 32) values <-> k/32 blocks, ggml's round-to-nearest rules.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int k);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int k);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int k);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int k);

// Dot products of one weight row with one activation row (k values). The integer formats take
// the activations quantized to Q8_0; the float formats take them in fp32.
float dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int k);
float dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, int k);
float dot_f32(const float* w, const float* x, int k);
float dot_bf16_f32(const std::uint16_t* w, const float* x, int k);
float dot_f16_f32(const std::uint16_t* w, const float* x, int k);

}  // namespace ellm::quant
