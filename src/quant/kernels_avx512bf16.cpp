// The AVX512_BF16 path: bf16 weights on vdpbf16ps (32 products per instruction), the activations
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
  static constexpr int kDecodePrefetch = BF16<Avx512<true>>::kDecodePrefetch;
  static __m512bh load(const W* p) { return (__m512bh)_mm512_loadu_si512(p); }
  static float scalar(W b) { return bf16_to_float(b); }
};

// One token (decode) and four or more (prefill) on vdpbf16ps: one load and one instruction per 32
// weights. Decode's tile of 8 rows shares each conversion of the activations, and from DRAM it
// beats the exact even/odd kernel (bf16_avx512) side by side: 83–88 % of the bound against 78–85 %
// on 1 thread, 88–93 % against 80–82 % on 2 (docs/PERFORMANCE.md, "Decode prefetch"). Two or
// three tokens keep the exact kernel: prefill's tiles would convert their activations once per
// 4 rows and token.
void bf16_kernel(const std::uint16_t* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy) {
  if (n > 1 && n < Avx512Bf16Dot::FTT) return bf16_avx512<true>(w, r0, r1, cols, x, n, y, ldy);
  float_kernel<Avx512Bf16Dot, Bf16Raw>(w, r0, r1, cols, x, n, y, ldy);
}

}  // namespace

KernelTable avx512bf16_kernels() {
  KernelTable k = avx512vnni_kernels();
  k.bf16 = bf16_kernel;
  return k;
}
}  // namespace ellm::quant
