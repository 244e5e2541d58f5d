#include "quant/blocks.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ellm::quant {
namespace {
std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

std::uint16_t fp32_to_fp16(float f) {
  const std::uint32_t u = bits(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return std::uint16_t(sign | 0x7E00u | ((a >> 13) & 0x3FFu));  // NaN, quiet
  if (a >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {  // below 2^-14: a half subnormal (or zero), value = m * 2^-24
    // Adding 0.5 makes the float's own round-to-nearest-even do the rounding at 2^-24 ulp.
    const float r = from_bits(a) + 0.5f;
    return std::uint16_t(sign | (bits(r) - bits(0.5f)));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  const std::uint32_t odd = (a >> 13) & 1u;
  return std::uint16_t(sign | ((a - 0x38000000u + 0x0FFFu + odd) >> 13));
}

float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return from_bits(sign | 0x7F800000u | (m << 13));         // inf / NaN
  if (e == 0) return from_bits(sign) + (sign ? -1.0f : 1.0f) * float(m) * 0x1p-24f;  // exact
  return from_bits(sign | ((e + 112) << 23) | (m << 13));
}

std::uint16_t fp32_to_bf16(float f) {
  const std::uint32_t u = bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((u >> 16) | 0x40u);  // NaN, quiet
  return std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int k) {
  for (int b = 0; b < k / kQK; b++, x += kQK) {
    float amax = 0;
    for (int j = 0; j < kQK; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; j++) y[b].qs[j] = std::int8_t(std::lround(x[j] * id));
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int k) {
  for (int b = 0; b < k / kQK; b++, x += kQK) {
    float amax = 0, max = 0;  // max: the value of largest magnitude, with its sign
    for (int j = 0; j < kQK; j++)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; j++) {  // ggml: truncation of x/d + 8.5, i.e. round to nearest
      const int lo = std::min(15, int(std::int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(std::int8_t(x[j + kQK / 2] * id + 8.5f)));
      y[b].qs[j] = std::uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int k) {
  for (int b = 0; b < k / kQK; b++, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; j++) y[j] = d * float(x[b].qs[j]);
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int k) {
  for (int b = 0; b < k / kQK; b++, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; j++) {
      y[j] = d * float((x[b].qs[j] & 0x0F) - 8);
      y[j + kQK / 2] = d * float((x[b].qs[j] >> 4) - 8);
    }
  }
}

float dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int k) {
  float sum = 0;
  for (int b = 0; b < k / kQK; b++) {
    int isum = 0;
    for (int j = 0; j < kQK; j++) isum += int(w[b].qs[j]) * int(x[b].qs[j]);
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d));
  }
  return sum;
}

float dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, int k) {
  float sum = 0;
  for (int b = 0; b < k / kQK; b++) {
    int isum = 0;
    for (int j = 0; j < kQK / 2; j++) {
      isum += ((w[b].qs[j] & 0x0F) - 8) * int(x[b].qs[j]);
      isum += ((w[b].qs[j] >> 4) - 8) * int(x[b].qs[j + kQK / 2]);
    }
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d));
  }
  return sum;
}

float dot_f32(const float* w, const float* x, int k) {
  float sum = 0;
  for (int j = 0; j < k; j++) sum += w[j] * x[j];
  return sum;
}
float dot_bf16_f32(const std::uint16_t* w, const float* x, int k) {
  float sum = 0;
  for (int j = 0; j < k; j++) sum += bf16_to_fp32(w[j]) * x[j];
  return sum;
}
float dot_f16_f32(const std::uint16_t* w, const float* x, int k) {
  float sum = 0;
  for (int j = 0; j < k; j++) sum += fp16_to_fp32(w[j]) * x[j];
  return sum;
}

}  // namespace ellm::quant
