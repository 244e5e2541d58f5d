// The AVX2 (+FMA, F16C) path; compiled with -mavx2 -mfma -mf16c (CMakeLists.txt). A 256-bit
// vector holds half a row group (8 rows, one 32-bit lane each); u8 x s8 products on vpmaddubsw +
// vpmaddwd, whose 16-bit pair sums must not saturate (see q8_block).
#include "quant/kernels_simd.hpp"

namespace ellm::quant {
namespace {

struct Avx2 {
  using vi = __m256i;
  using vf = __m256;
  using vx = __m256;
  static constexpr int L = 8, TT = 4, FL = 8, FTT = 2;

  static vf zero_f() { return _mm256_setzero_ps(); }
  static vf set1(float f) { return _mm256_set1_ps(f); }
  static vf fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
  static vf mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
  static vf cvt(vi a) { return _mm256_cvtepi32_ps(a); }
  static vf load_scales(const std::uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
  static void store(float* y, vf v, int valid) {
    if (valid == L) return _mm256_storeu_ps(y, v);
    const vi lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lanes), v);
  }
  static vi bcast(const ActBlock* xb, int word) {
    std::int32_t v;
    std::memcpy(&v, xb->qs + 4 * word, 4);
    return _mm256_set1_epi32(v);
  }
  static vi widen_add(vi acc, vi pairs16) { return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs16, _mm256_set1_epi16(1))); }

  template <int T>
  static void q8_block(const std::uint8_t* chunks, const ActBlock* const* xb, vi* isum) {
    for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
    for (int c = 0; c < kChunks8; c++) {  // |w| x (x with w's sign): pairs <= 2 * 127 * 127 fit int16
      const vi w = _mm256_loadu_si256((const __m256i*)(chunks + 64 * c));
      const vi aw = _mm256_abs_epi8(w);
      for (int t = 0; t < T; t++)
        isum[t] = widen_add(isum[t], _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast(xb[t], c), w)));
    }
  }

  template <int T>
  static void q4_block(const std::uint8_t* chunks, const ActBlock* const* xb, vi* isum) {
    const vi m4 = _mm256_set1_epi8(0x0F);
    for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
    for (int c = 0; c < kChunks4; c++) {  // low nibbles: weights 4c.., high: 16 + 4c..
      const vi v = _mm256_loadu_si256((const __m256i*)(chunks + 64 * c));
      const vi lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      for (int t = 0; t < T; t++)  // pairs <= 2 * 15 * 127, two of them summed still fit int16
        isum[t] = widen_add(isum[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast(xb[t], c)),
                                                      _mm256_maddubs_epi16(hi, bcast(xb[t], c + 4))));
    }
    for (int t = 0; t < T; t++) isum[t] = _mm256_sub_epi32(isum[t], _mm256_set1_epi32(8 * xb[t]->sum));
  }

  static vx load_x(const float* p) { return _mm256_loadu_ps(p); }
  static vf madd(vf w, vx x, vf acc) { return _mm256_fmadd_ps(w, x, acc); }
  static float hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static vf load_f32(const float* p) { return _mm256_loadu_ps(p); }
  static vf load_f16(const std::uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
  static vf load_bf16(const std::uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
  }
};

}  // namespace

KernelTable avx2_kernels() { return make_table<Avx2>(); }
}  // namespace ellm::quant
