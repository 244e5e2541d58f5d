// The AVX512_BF16 path: prefill with bf16 weights on vdpbf16ps (32 products per instruction), the activations
// rounded to bf16 on the fly (round-to-nearest-even, vcvtne2ps2bf16): an extra rounding the other
// paths do not make, hence bf16's looser bound against the scalar reference in the tests.
// Everything else is the VNNI path's. Compiled with AVX-512 F/BW/VL + VNNI + BF16.
#include "quant/kernels_avx512.hpp"

namespace ellm::quant {
namespace {

struct Avx512Bf16Dot : Avx512<true> {
  using vx = __m512bh;
  static constexpr int FL = 32;
  static vx load_x(const float* p) { return _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p)); }
  static vf madd(__m512bh w, vx x, vf acc) { return _mm512_dpbf16_ps(acc, w, x); }
};

struct Bf16Raw {
  using W = std::uint16_t;
  static __m512bh load(const W* p) { return (__m512bh)_mm512_loadu_si512(p); }
  static float scalar(W b) { return bf16_to_float(b); }
};

// Prefill on vdpbf16ps. Decode (a tile narrower than FTT tokens) is bound by memory, where
// converting the activations for every 4 rows costs more than it saves: it keeps AVX-512's exact
// fp32 products.
void bf16_kernel(const std::uint16_t* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy) {
  if (n < Avx512Bf16Dot::FTT) return bf16_avx512<true>(w, r0, r1, cols, x, n, y, ldy);
  float_kernel<Avx512Bf16Dot, Bf16Raw>(w, r0, r1, cols, x, n, y, ldy);
}

}  // namespace

KernelTable avx512bf16_kernels() {
  KernelTable k = avx512vnni_kernels();
  k.bf16 = bf16_kernel;
  return k;
}
}  // namespace ellm::quant
