// AVX-512 (F/BW/VL) traits for kernels_simd.hpp, with or without VNNI. One 512-bit vector holds a
// row group's 16 rows (one 32-bit lane each). u8 x s8 products: VNNI's vpdpbusd, else
// vpmaddubsw + vpmaddwd (whose 16-bit pair sums must not saturate, see q8_block).
#pragma once
#include "quant/kernels_simd.hpp"

namespace ellm::quant {
namespace {

template <bool Vnni>
struct Avx512 {
  using vi = __m512i;
  using vf = __m512;
  using vx = __m512;
  static constexpr int L = 16, TT = 4, FL = 16, FTT = 4;

  static vf zero_f() { return _mm512_setzero_ps(); }
  static vf set1(float f) { return _mm512_set1_ps(f); }
  static vf fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
  static vf mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
  static vf cvt(vi a) { return _mm512_cvtepi32_ps(a); }
  static vf load_scales(const std::uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
  static void store(float* y, vf v, int valid) { _mm512_mask_storeu_ps(y, __mmask16((1u << valid) - 1), v); }

  // Activation bytes [4 word, 4 word + 4) of a block in every lane.
  static vi bcast(const ActBlock* xb, int word) {
    std::int32_t v;
    std::memcpy(&v, xb->qs + 4 * word, 4);
    return _mm512_set1_epi32(v);
  }
  // acc + the sums of 4 products u8 (u) x s8 (s) per lane without VNNI: the pairs must stay within int16.
  static vi madd_u8s8(vi acc, vi u, vi s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
  }

  template <int T>
  static void q8_block(const std::uint8_t* chunks, const ActBlock* const* xb, vi* isum) {
    if constexpr (Vnni) {  // sum (w + 128) x, corrected by 128 sum x below: one vpdpbusd per token
      // Two accumulators per token (chunks 0-3 and 4-7) halve the chain of dependent vpdpbusd, so
      // more blocks, and their loads, are in flight at once.
      vi part[2][T];
      for (int t = 0; t < T; t++) part[0][t] = part[1][t] = _mm512_setzero_si512();
      for (int c = 0; c < kChunks8; c++) {
        const vi wu = _mm512_xor_si512(_mm512_loadu_si512(chunks + 64 * c), _mm512_set1_epi8(char(0x80)));
        for (int t = 0; t < T; t++) part[c / 4][t] = _mm512_dpbusd_epi32(part[c / 4][t], wu, bcast(xb[t], c));
      }
      for (int t = 0; t < T; t++)
        isum[t] = _mm512_sub_epi32(_mm512_add_epi32(part[0][t], part[1][t]), _mm512_set1_epi32(128 * xb[t]->sum));
      return;
    }
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    for (int c = 0; c < kChunks8; c++) {
      const vi w = _mm512_loadu_si512(chunks + 64 * c);  // |w| x (x with w's sign): pairs <= 2 * 127 * 127 fit int16
      const __mmask64 neg = _mm512_movepi8_mask(w);
      const vi aw = _mm512_abs_epi8(w);
      for (int t = 0; t < T; t++) {
        const vi xs = bcast(xb[t], c);
        isum[t] = madd_u8s8(isum[t], aw, _mm512_mask_sub_epi8(xs, neg, _mm512_setzero_si512(), xs));
      }
    }
  }

  template <int T>
  static void q4_block(const std::uint8_t* chunks, const ActBlock* const* xb, vi* isum) {
    const vi m4 = _mm512_set1_epi8(0x0F);
    if constexpr (Vnni) {
      // Low and high nibbles in two accumulators (two chains of 4, not one of 8). The high nibbles
      // stay in place (v & 0xF0, one op instead of shift + mask): their sum is 16x the true one,
      // exact in int32 (|sum| <= 4 x 4 x 240 x 128), and one shift per block undoes it.
      vi lo_sum[T], hi16_sum[T];
      for (int t = 0; t < T; t++) lo_sum[t] = hi16_sum[t] = _mm512_setzero_si512();
      for (int c = 0; c < kChunks4; c++) {
        const vi v = _mm512_loadu_si512(chunks + 64 * c);
        const vi lo = _mm512_and_si512(v, m4), hi16 = _mm512_andnot_si512(m4, v);
        for (int t = 0; t < T; t++) {
          lo_sum[t] = _mm512_dpbusd_epi32(lo_sum[t], lo, bcast(xb[t], c));
          hi16_sum[t] = _mm512_dpbusd_epi32(hi16_sum[t], hi16, bcast(xb[t], c + 4));
        }
      }
      for (int t = 0; t < T; t++)
        isum[t] = _mm512_sub_epi32(_mm512_add_epi32(lo_sum[t], _mm512_srai_epi32(hi16_sum[t], 4)),
                                   _mm512_set1_epi32(8 * xb[t]->sum));
      return;
    }
    for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
    for (int c = 0; c < kChunks4; c++) {  // low nibbles: weights 4c.., high: 16 + 4c..
      const vi v = _mm512_loadu_si512(chunks + 64 * c);
      const vi lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      for (int t = 0; t < T; t++) {  // pairs <= 2 * 15 * 127, two of them summed still fit int16
        const vi p = _mm512_add_epi16(_mm512_maddubs_epi16(lo, bcast(xb[t], c)),
                                      _mm512_maddubs_epi16(hi, bcast(xb[t], c + 4)));
        isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(p, _mm512_set1_epi16(1)));
      }
    }
    for (int t = 0; t < T; t++) isum[t] = _mm512_sub_epi32(isum[t], _mm512_set1_epi32(8 * xb[t]->sum));
  }

  static vx load_x(const float* p) { return _mm512_loadu_ps(p); }
  static vf madd(vf w, vx x, vf acc) { return _mm512_fmadd_ps(w, x, acc); }
  static float hsum(vf v) { return _mm512_reduce_add_ps(v); }
  static vf load_f32(const float* p) { return _mm512_loadu_ps(p); }
  static vf load_f16(const std::uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
  static vf load_bf16(const std::uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
  }
};

// bf16 decode: one 512-bit load holds 32 bf16 weights, 16 pairs per 32-bit lane. Shifting a lane
// left by 16 gives its even weight as fp32, masking off its low half the odd one, so a cache line
// of weights costs one load, two integer ops and two FMAs (against the activations split once per
// tile into even and odd), where widening 16 at a time costs two loads and two shuffles more. The
// products are the exact fp32 ones of the generic path; only the order of the sums differs.
template <bool Vnni>
struct Avx512Bf16Pairs : Avx512<Vnni> {
  using vf = __m512;
  struct vx {
    __m512 even, odd;
  };
  static constexpr int FL = 32;
  static vx load_x(const float* p) {
    const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    return {_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b)};
  }
  static vf madd(__m512i w, vx x, vf acc) {
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), x.even, acc);
    const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32(int(0xFFFF0000u))));
    return _mm512_fmadd_ps(odd, x.odd, acc);
  }
};
struct Bf16Pairs {
  using W = std::uint16_t;
  static constexpr int kDecodePrefetch = BF16<Avx512<false>>::kDecodePrefetch;
  static __m512i load(const W* p) { return _mm512_loadu_si512(p); }
  static float scalar(W b) { return bf16_to_float(b); }
};

// bf16 on AVX-512: decode on the pairs above, more tokens on the generic widening path.
template <bool Vnni>
void bf16_avx512(const std::uint16_t* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy) {
  if (n == 1) return float_kernel<Avx512Bf16Pairs<Vnni>, Bf16Pairs>(w, r0, r1, cols, x, n, y, ldy);
  float_kernel<Avx512<Vnni>, BF16<Avx512<Vnni>>>(w, r0, r1, cols, x, n, y, ldy);
}

}  // namespace
}  // namespace ellm::quant
