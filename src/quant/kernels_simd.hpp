// The loops every SIMD path shares, written once over a path's "traits" V (vector types, loads,
// and the integer inner block). Included only by the kernel files, each compiled for its own
// target, and includes no standard header with out-of-line code; everything here has internal linkage (anonymous namespace), so no copy compiled for one
// target can be picked by the linker for another.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "quant/kernels.hpp"

namespace ellm::quant {
namespace {

// --- Integer formats over the interleaved layout (kernels.hpp) ---------------------------------
// V provides: vi, vf; L (rows per vector: 16 or 8); TT (tokens per tile); zero_i/zero_f, set1,
// fma, mul, cvt, load_scales (L fp16 -> fp32), store (the first `valid` lanes), and
// q8_block<TT>/q4_block<TT>(chunks, xb, isum): the 32-element integer dot products of one block
// for L rows (their chunk bytes start at `chunks`, 64 bytes apart) and TT activation blocks,
// "- 8 * sum" of Q4_0 included.

// A prefetch of the line `bytes` past p. The address may lie past the end of the weights (the
// prefetch never faults); it is computed as an integer, since a pointer that far past its array
// would be undefined behaviour. Always inlined, like its callers (see prefetch_pair).
[[gnu::always_inline]] inline void prefetch_ahead(const void* p, std::size_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(p) + bytes), _MM_HINT_T0);
}

// Decode's software prefetch: on each even block, the whole block pair kDecodePrefetchBlocks ahead
// (its two chunk blocks and their scales). Past the group's end it touches the next group's
// bytes or none; a prefetch never faults. Always inlined: GCC's IPA pure-const pass counts a
// prefetch as no side effect, so a call to an out-of-line copy of this function is deleted as
// dead code (it was, silently, until the objdump of this kernel showed no prefetcht0).
template <bool Q8>
[[gnu::always_inline]] inline void prefetch_pair(const std::uint8_t* group, int b) {
  constexpr int kChunkBytes = Q8 ? kChunkBytesQ8 : kChunkBytesQ4;
  if (kDecodePrefetchBlocks<Q8> == 0 || b % 2) return;
  const std::size_t ahead = chunk_offset(b + kDecodePrefetchBlocks<Q8>, kChunkBytes);
  for (std::size_t line = 0; line < pair_bytes(kChunkBytes); line += 64) prefetch_ahead(group, ahead + line);
}

// A tile of G row groups (stride `group_stride` bytes apart, their y rows kRowGroup apart) x TT
// tokens. Decode (one token) takes kDecodeGroups groups at a time and prefetches ahead
// (kernels.hpp): it is bound by how many cache-line fills are in flight. Prefill takes one group
// and four tokens: it is bound by the dot products, and the group stays in the L2 for the next
// tokens. `valid` rows of each group's half are stored (G > 1 only over full groups).
template <class V, bool Q8, int G, int TT>
void int_tile(const std::uint8_t* group, std::size_t group_stride, int nb, int half, const ActBlock* x, float* y,
              int ldy, int valid) {
  constexpr int kChunkBytes = Q8 ? kChunkBytesQ8 : kChunkBytesQ4;
  typename V::vf acc[G][TT];
  for (int i = 0; i < G; i++)
    for (int t = 0; t < TT; t++) acc[i][t] = V::zero_f();
  for (int b = 0; b < nb; b++) {
    const ActBlock* xb[TT];
    for (int t = 0; t < TT; t++) xb[t] = x + std::size_t(t) * nb + b;
    for (int i = 0; i < G; i++) {
      const std::uint8_t* g = group + i * group_stride;
      if constexpr (TT == 1) prefetch_pair<Q8>(g, b);
      typename V::vi isum[TT];
      if constexpr (Q8) V::template q8_block<TT>(g + chunk_offset(b, kChunkBytes) + 4 * V::L * half, xb, isum);
      else V::template q4_block<TT>(g + chunk_offset(b, kChunkBytes) + 4 * V::L * half, xb, isum);
      const typename V::vf dw = V::load_scales(g + scale_offset(nb, b, kChunkBytes) + 2 * V::L * half);
      for (int t = 0; t < TT; t++) acc[i][t] = V::fma(V::cvt(isum[t]), V::mul(dw, V::set1(xb[t]->d)), acc[i][t]);
    }
  }
  for (int i = 0; i < G; i++)
    for (int t = 0; t < TT; t++) V::store(y + std::size_t(t) * ldy + i * kRowGroup, acc[i][t], valid);
}

template <class V, bool Q8>
void int_kernel(const std::uint8_t* w, int g0, int g1, int rows, int cols, const ActBlock* x, int n,
                float* y, int ldy) {
  const int nb = cols / 32;
  const std::size_t stride = group_bytes(nb, Q8 ? kChunkBytesQ8 : kChunkBytesQ4);
  const int full_groups = rows / kRowGroup;  // groups with no padding rows
  int g = g0;
  if (n == 1)
    for (; g + kDecodeGroups<Q8> <= g1 && g + kDecodeGroups<Q8> <= full_groups; g += kDecodeGroups<Q8>)
      for (int half = 0; half < kRowGroup / V::L; half++)
        int_tile<V, Q8, kDecodeGroups<Q8>, 1>(w + g * stride, stride, nb, half, x, y + g * kRowGroup + half * V::L, ldy, V::L);
  for (; g < g1; g++) {
    const std::uint8_t* group = w + g * stride;
    for (int half = 0; half < kRowGroup / V::L; half++) {
      const int row0 = g * kRowGroup + half * V::L;
      if (row0 >= rows) break;
      const int valid = rows - row0 < V::L ? rows - row0 : V::L;
      int t = 0;
      for (; t + V::TT <= n; t += V::TT)
        int_tile<V, Q8, 1, V::TT>(group, stride, nb, half, x + std::size_t(t) * nb, y + std::size_t(t) * ldy + row0, ldy, valid);
      for (; t < n; t++)
        int_tile<V, Q8, 1, 1>(group, stride, nb, half, x + std::size_t(t) * nb, y + std::size_t(t) * ldy + row0, ldy, valid);
    }
  }
}

// --- Activations to Q8_0 (AVX2, which every SIMD path has) --------------------------------------
// The scale goes through fp16 as in ggml (F16C, exact RNE); quants round half away from zero like
// the reference's lround: truncate x/d + copysign(0.49999997, x), exact for |x/d| <= 127.
inline void quantize_act_avx2(const float* x, int n, int cols, ActBlock* out) {
  const int nb = cols / 32;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u)));
  const __m256 almost_half = _mm256_set1_ps(0.49999997f);
  for (std::size_t i = 0; i < std::size_t(n) * nb; i++) {
    const float* xb = x + (i / nb) * std::size_t(cols) + (i % nb) * 32;
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) amax = _mm256_max_ps(amax, _mm256_and_ps(v[j] = _mm256_loadu_ps(xb + 8 * j), abs_mask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    out[i].d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    __m256i q[4];
    for (int j = 0; j < 4; j++) {
      const __m256 s = _mm256_mul_ps(v[j], _mm256_set1_ps(id));
      q[j] = _mm256_cvttps_epi32(_mm256_add_ps(s, _mm256_or_ps(almost_half, _mm256_and_ps(s, sign_mask))));
    }
    // int32 -> int8 in order: packs interleave 128-bit lanes, the permute undoes it.
    const __m256i q16 = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, q16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i*)out[i].qs, q8);
    const __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    out[i].sum = _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
  }
}

// --- Float formats, row-major -------------------------------------------------------------------
// A tile of RT rows x TT tokens of dot products along k. V provides vf, FL (elements per step),
// vx/load_x (FL activations as the multiply wants them), madd(w, x, acc), hsum, FTT (tokens per
// tile); Fmt provides W (the stored type), load (FL weights as madd wants them), scalar (one
// weight to fp32, for the k tail) and kDecodePrefetch: how many bytes ahead of its loads decode
// prefetches each row (0: none), one prefetch per 64 bytes of weights. The 16-bit formats convert
// every weight before its FMA, which fills the core's window as Q4_0's dot products do (see
// kDecodePrefetchBlocks); fp32 reaches its bound without. Measured side by side
// (docs/PERFORMANCE.md, "Decode prefetch").

inline float half_to_float(std::uint16_t h) { return _cvtsh_ss(h); }
inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class V, class Fmt, int RT, int TT, bool Decode = false>
void float_tile(const typename Fmt::W* w, int cols, int k0, int k1, const float* x, float* y, int ldy) {
  typename V::vf acc[RT][TT];
  for (int i = 0; i < RT; i++)
    for (int t = 0; t < TT; t++) acc[i][t] = V::zero_f();
  int k = k0;
  for (; k + V::FL <= k1; k += V::FL) {
    typename V::vx xv[TT];
    for (int t = 0; t < TT; t++) xv[t] = V::load_x(x + std::size_t(t) * cols + k);
    for (int i = 0; i < RT; i++) {
      if constexpr (Decode && Fmt::kDecodePrefetch > 0)
        if (k % (64 / sizeof(typename Fmt::W)) == 0)
          prefetch_ahead(w + std::size_t(i) * cols + k, Fmt::kDecodePrefetch);
      const auto wv = Fmt::load(w + std::size_t(i) * cols + k);
      for (int t = 0; t < TT; t++) acc[i][t] = V::madd(wv, xv[t], acc[i][t]);
    }
  }
  for (int i = 0; i < RT; i++)
    for (int t = 0; t < TT; t++) {
      float s = V::hsum(acc[i][t]);
      for (int j = k; j < k1; j++) s += Fmt::scalar(w[std::size_t(i) * cols + j]) * x[std::size_t(t) * cols + j];
      float& out = y[std::size_t(t) * ldy + i];
      out = k0 == 0 ? s : out + s;
    }
}

// Prefill is blocked so that a panel of activations (kTokenBlock tokens x kColBlock columns, 512 KB)
// stays in L2 while the weights stream by; decode (n <= FTT) reads each row in one sweep.
template <class V, class Fmt>
void float_kernel(const typename Fmt::W* w, int r0, int r1, int cols, const float* x, int n, float* y, int ldy) {
  constexpr int RT = 4, TT = V::FTT, kTokenBlock = 64, kColBlock = 2048;
  static_assert(kColBlock % V::FL == 0, "only the last column block has a tail");
  if (n == 1) {  // decode: more rows side by side, more streams in flight (see int_tile)
    constexpr int kDecodeRows = 2 * RT;
    int r = r0;
    for (; r + kDecodeRows <= r1; r += kDecodeRows)
      float_tile<V, Fmt, kDecodeRows, 1, true>(w + std::size_t(r) * cols, cols, 0, cols, x, y + r, ldy);
    for (; r < r1; r++) float_tile<V, Fmt, 1, 1, true>(w + std::size_t(r) * cols, cols, 0, cols, x, y + r, ldy);
    return;
  }
  const int kc = n <= TT ? cols : kColBlock;
  for (int tb = 0; tb < n; tb += kTokenBlock) {
    const int te = n < tb + kTokenBlock ? n : tb + kTokenBlock;
    for (int k0 = 0; k0 < cols; k0 += kc) {
      const int k1 = cols < k0 + kc ? cols : k0 + kc;
      auto tiles = [&](int r, auto rt) {
        constexpr int kR = decltype(rt)::value;
        int t = tb;
        for (; t + TT <= te; t += TT)
          float_tile<V, Fmt, kR, TT>(w + std::size_t(r) * cols, cols, k0, k1, x + std::size_t(t) * cols,
                                     y + std::size_t(t) * ldy + r, ldy);
        for (; t < te; t++)
          float_tile<V, Fmt, kR, 1>(w + std::size_t(r) * cols, cols, k0, k1, x + std::size_t(t) * cols,
                                    y + std::size_t(t) * ldy + r, ldy);
      };
      int r = r0;
      for (; r + RT <= r1; r += RT) tiles(r, std::integral_constant<int, RT>());
      for (; r < r1; r++) tiles(r, std::integral_constant<int, 1>());
    }
  }
}

// The three stored float types for a V whose madd takes fp32 weights.
template <class V>
struct F32 {
  using W = float;
  static constexpr int kDecodePrefetch = 0;
  static typename V::vf load(const float* p) { return V::load_f32(p); }
  static float scalar(float f) { return f; }
};
template <class V>
struct F16 {
  using W = std::uint16_t;
  static constexpr int kDecodePrefetch = 512;
  static typename V::vf load(const W* p) { return V::load_f16(p); }
  static float scalar(W h) { return half_to_float(h); }
};
template <class V>
struct BF16 {
  using W = std::uint16_t;
  static constexpr int kDecodePrefetch = 256;
  static typename V::vf load(const W* p) { return V::load_bf16(p); }
  static float scalar(W b) { return bf16_to_float(b); }
};

// The table of a path from its traits.
template <class V>
KernelTable make_table() {
  return {quantize_act_avx2, int_kernel<V, true>, int_kernel<V, false>, float_kernel<V, F32<V>>, float_kernel<V, BF16<V>>,
          float_kernel<V, F16<V>>};
}

}  // namespace
}  // namespace ellm::quant
