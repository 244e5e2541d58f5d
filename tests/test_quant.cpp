// Quantized weights (src/quant): the fp16/bf16 conversions, ggml's block rules, quantize ->
// dequantize error bounds, and every kernel on every SIMD path this CPU has against the scalar
// reference of quant/blocks.hpp, on random data (never zeros), odd shapes, 1 and 2 threads.
#include <gtest/gtest.h>

#include "support/random.hpp"

#include <time.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "quant/blocks.hpp"
#include "quant/dispatch.hpp"
#include "quant/qmatrix.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

namespace ellm::quant {
namespace {

using ellm::testing::random_vector;

// Normalized squared error: sum (a - ref)^2 / sum ref^2.
double nse(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); i++) {
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return num / den;
}

float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<Isa> supported_paths() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512, Isa::AVX512_VNNI, Isa::AVX512_BF16})
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

// Restores the path and the pool size a test changed.
struct PathGuard {
  Isa isa = active_isa();
  int threads = rank_pool().threads();
  ~PathGuard() {
    set_isa(isa);
    rank_pool().set_threads(threads);
  }
};

constexpr Format kFormats[] = {Format::F32, Format::BF16, Format::F16, Format::Q8_0, Format::Q4_0};

TEST(Fp16, ExactOnEveryRepresentableValue) {
  for (std::uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  // NaN payloads: only NaN-ness is kept
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(std::uint16_t(h))), h) << std::hex << h;
  }
  EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::nanf("")))));
}

TEST(Fp16, RoundsToNearestEvenOnTiesAndAgreesWithTheCompiler) {
  // The midpoint between consecutive halves h and h+1 goes to the even one (normals and subnormals).
  for (std::uint16_t h : {std::uint16_t(0x3C00), std::uint16_t(0x3C01), std::uint16_t(0x0001),
                          std::uint16_t(0x0002), std::uint16_t(0x7BFE), std::uint16_t(0xBC01)}) {
    const double lo = fp16_to_fp32(h), hi = fp16_to_fp32(std::uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);
    EXPECT_EQ(fp32_to_fp16(mid), (h & 1) ? h + 1 : h) << std::hex << h;
    EXPECT_EQ(fp32_to_fp16(std::nextafter(mid, float(hi))), h + 1);
    EXPECT_EQ(fp32_to_fp16(std::nextafter(mid, float(lo))), h);
  }
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);  // largest finite
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // the tie above it: infinity
  // GCC's _Float16 conversion (libgcc's, round-to-nearest-even) as an independent reference.
  Rng rng(7);
  for (int i = 0; i < 200000; i++) {
    const float f = bits_to_float(std::uint32_t(rng.next_u64()));
    if (std::isnan(f)) continue;
    const _Float16 ref = _Float16(f);
    std::uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(fp32_to_fp16(f), ref_bits) << f;
  }
}

TEST(Bf16, ExactOnRepresentableValuesAndRoundsToNearestEven) {
  for (std::uint32_t b = 0; b < 0x10000; b++) {
    if ((b & 0x7F80) == 0x7F80 && (b & 0x7F)) continue;
    ASSERT_EQ(fp32_to_bf16(bf16_to_fp32(std::uint16_t(b))), b) << std::hex << b;
  }
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808000u)), 0x3F80);  // tie, 0x3F80 even: down
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F818000u)), 0x3F82);  // tie, 0x3F81 odd: up
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808001u)), 0x3F81);  // above the tie: up
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F7FFFFFu)), 0x7F80);  // overflow: infinity
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
}

TEST(Blocks, FollowGgmlRulesAndNibbleOrder) {
  float x[32];
  for (int j = 0; j < 32; j++) x[j] = float(j - 16) / 2;  // max magnitude -8 at j = 0: d = 1
  BlockQ4_0 q4;
  quantize_row_q4_0(x, &q4, 32);
  EXPECT_EQ(q4.d, 0x3C00);       // fp16 1.0
  EXPECT_EQ(q4.qs[0], 0x80);     // weight 0 -> 0 (low nibble), weight 16 -> 8 (high nibble)
  EXPECT_EQ(q4.qs[1], 0x91);     // weight 1: 0.5 + 8.5 -> 1; weight 17: 9
  EXPECT_EQ(q4.qs[15] >> 4, 15);  // weight 31: 7.5 + 8.5 = 16, clamped to 15
  for (int j = 0; j < 32; j++) x[j] = float(j - 16);
  BlockQ8_0 q8;
  quantize_row_q8_0(x, &q8, 32);
  EXPECT_EQ(q8.d, fp32_to_fp16(16.0f / 127));
  EXPECT_EQ(q8.qs[0], -127);
  EXPECT_EQ(q8.qs[17], 8);  // 1 * 127/16 = 7.94
  EXPECT_EQ(q8.qs[18], 16);  // 15.875 -> 16
}

TEST(Blocks, QuantizeDequantizeWithinHalfAStep) {
  const int k = 32 * 256;
  const auto w = random_vector(k, 3);
  std::vector<BlockQ8_0> q8(k / 32);
  std::vector<BlockQ4_0> q4(k / 32);
  std::vector<float> d8(k), d4(k);
  quantize_row_q8_0(w.data(), q8.data(), k);
  quantize_row_q4_0(w.data(), q4.data(), k);
  dequantize_row_q8_0(q8.data(), d8.data(), k);
  dequantize_row_q4_0(q4.data(), d4.data(), k);
  for (int i = 0; i < k; i++) {
    // Half a step, plus the fp16 rounding of the scale times the largest quant (2^-11 * 127 steps).
    ASSERT_LE(std::fabs(d8[i] - w[i]), 0.57f * fp16_to_fp32(q8[i / 32].d)) << i;
    // Q4_0: half a step, but up to a whole step for the value clamped at +7 opposite the maximum.
    ASSERT_LE(std::fabs(d4[i] - w[i]), 1.01f * std::fabs(fp16_to_fp32(q4[i / 32].d))) << i;
  }
  EXPECT_LT(nse(d8, w), 6e-5);    // measured 2.9e-5
  EXPECT_LT(nse(d4, w), 1.5e-2);  // measured 7.3e-3
}

TEST(QMatrix, DequantizeMatchesTheReferenceBlocksAndReportsBytes) {
  const int rows = 21, cols = 96;  // a partial row group
  const auto W = random_vector(std::size_t(rows) * cols, 4);
  for (Format f : kFormats) {
    const QMatrix m = QMatrix::quantize(f, W.data(), rows, cols);
    std::vector<float> got(W.size()), want(W.size());
    m.dequantize(got.data());
    for (int r = 0; r < rows; r++) {
      const float* w = W.data() + std::size_t(r) * cols;
      float* o = want.data() + std::size_t(r) * cols;
      std::vector<BlockQ8_0> q8(cols / 32);
      std::vector<BlockQ4_0> q4(cols / 32);
      for (int j = 0; j < cols; j++) {
        if (f == Format::F32) o[j] = w[j];
        if (f == Format::BF16) o[j] = bf16_to_fp32(fp32_to_bf16(w[j]));
        if (f == Format::F16) o[j] = fp16_to_fp32(fp32_to_fp16(w[j]));
      }
      if (f == Format::Q8_0) quantize_row_q8_0(w, q8.data(), cols), dequantize_row_q8_0(q8.data(), o, cols);
      if (f == Format::Q4_0) quantize_row_q4_0(w, q4.data(), cols), dequantize_row_q4_0(q4.data(), o, cols);
    }
    EXPECT_EQ(got, want) << format_name(f);
    const std::size_t padded_rows = 32;  // integer formats: whole groups of 16 rows
    const std::size_t expect = f == Format::F32    ? std::size_t(rows) * cols * 4
                               : f == Format::Q8_0 ? padded_rows * cols / 32 * 34
                               : f == Format::Q4_0 ? padded_rows * cols / 32 * 18
                                                   : std::size_t(rows) * cols * 2;
    EXPECT_EQ(m.bytes(), expect) << format_name(f);
  }
}

// y (n, rows) by the scalar reference dot products over plain ggml blocks.
std::vector<float> reference_matmul(Format f, const std::vector<float>& W, int rows, int cols,
                                    const std::vector<float>& x, int n) {
  std::vector<float> y(std::size_t(n) * rows);
  const int nb = cols / block_elems(f);
  for (int r = 0; r < rows; r++) {
    const float* w = W.data() + std::size_t(r) * cols;
    std::vector<BlockQ8_0> w8(nb), x8(nb);
    std::vector<BlockQ4_0> w4(nb);
    std::vector<std::uint16_t> h(cols);
    if (f == Format::Q8_0) quantize_row_q8_0(w, w8.data(), cols);
    if (f == Format::Q4_0) quantize_row_q4_0(w, w4.data(), cols);
    for (int j = 0; j < cols; j++) h[j] = f == Format::BF16 ? fp32_to_bf16(w[j]) : fp32_to_fp16(w[j]);
    for (int t = 0; t < n; t++) {
      const float* xt = x.data() + std::size_t(t) * cols;
      if (f == Format::Q8_0 || f == Format::Q4_0) quantize_row_q8_0(xt, x8.data(), cols);
      float& out = y[std::size_t(t) * rows + r];
      switch (f) {
        case Format::F32: out = dot_f32(w, xt, cols); break;
        case Format::BF16: out = dot_bf16_f32(h.data(), xt, cols); break;
        case Format::F16: out = dot_f16_f32(h.data(), xt, cols); break;
        case Format::Q8_0: out = dot_q8_0_q8_0(w8.data(), x8.data(), cols); break;
        case Format::Q4_0: out = dot_q4_0_q8_0(w4.data(), x8.data(), cols); break;
      }
    }
  }
  return y;
}

TEST(QMatrix, EveryPathQuantizesActivationsExactlyLikeTheReference) {
  const int n = 3, cols = 256;
  auto x = random_vector(std::size_t(n) * cols, 40);
  // A block whose largest magnitude is 127 has d = 1: these values are exact ties (x.5).
  for (int j = 0; j < 32; j++) x[j] = j == 0 ? -127.0f : float(j % 7) - 3.5f;
  std::vector<ActBlock> want(std::size_t(n) * cols / 32), got(want.size());
  scalar_kernels().quantize_act(x.data(), n, cols, want.data());
  // Ties round half away from zero (ggml's roundf): -2.5 -> -3, -1.5 -> -2, 0.5 -> 1.
  EXPECT_EQ(want[0].d, 1.0f);
  EXPECT_EQ(want[0].qs[1], -3);
  EXPECT_EQ(want[0].qs[2], -2);
  EXPECT_EQ(want[0].qs[4], 1);
  for (Isa isa : supported_paths()) {
    kernels_for(isa).quantize_act(x.data(), n, cols, got.data());
    for (std::size_t i = 0; i < want.size(); i++) {
      ASSERT_EQ(got[i].d, want[i].d) << isa_name(isa) << " block " << i;
      ASSERT_EQ(got[i].sum, want[i].sum) << isa_name(isa) << " block " << i;
      ASSERT_EQ(std::memcmp(got[i].qs, want[i].qs, 32), 0) << isa_name(isa) << " block " << i;
    }
  }
}

// Bound on NSE against the scalar reference: the integer formats differ only in the order of the
// float sums; bf16 on the avx512bf16 path also rounds the activations to bf16 (vdpbf16ps, relative
// error <= 2^-9 per product), which a single short dot product with cancellation can amplify
// (measured up to 5e-5 here for 1 row x 67 columns; 2.3e-6 on 64 x 1024, see below; one token,
// which rounds too since decode runs on vdpbf16ps, up to 3.3e-6).
double path_bound(Format f) { return f == Format::BF16 ? 2e-4 : 1e-9; }

TEST(QMatrix, EveryPathMatchesTheScalarReference) {
  PathGuard guard;
  struct Shape { int rows, cols; };
  for (Isa isa : supported_paths()) {
    set_isa(isa);
    for (int threads : {1, 2}) {
      rank_pool().set_threads(threads);
      for (Format f : kFormats)
        // 150 rows: decode tiles of kDecodeGroups whole groups, then single groups and a partial one
        for (Shape s : {Shape{1, 64}, Shape{37, 96}, Shape{48, 256}, Shape{5, 32}, Shape{150, 64}})
          for (int n = 1; n <= 7; n++) {
            const int cols = block_elems(f) == 1 && s.cols > 32 ? s.cols + 3 : s.cols;  // odd widths
            const auto W = random_vector(std::size_t(s.rows) * cols, 10 + s.rows);
            const auto x = random_vector(std::size_t(n) * cols, 20 + n);
            const auto want = reference_matmul(f, W, s.rows, cols, x, n);
            std::vector<float> y(want.size(), std::nanf(""));  // every element must be written
            QMatrix::quantize(f, W.data(), s.rows, cols).matmul(x.data(), n, y.data());
            ASSERT_LT(nse(y, want), path_bound(f))
                << isa_name(isa) << " " << format_name(f) << " " << s.rows << "x" << cols << " n=" << n
                << " threads=" << threads;
          }
    }
  }
}

TEST(QMatrix, ErrorAgainstFp32WithinTheFormatsBound) {
  PathGuard guard;
  const int rows = 64, cols = 1024, n = 3;
  const auto W = random_vector(std::size_t(rows) * cols, 30);
  const auto x = random_vector(std::size_t(n) * cols, 31);
  const auto exact = reference_matmul(Format::F32, W, rows, cols, x, n);
  struct Bound { Format f; double nse; };  // measured (scalar path) in the comments
  for (Isa isa : supported_paths()) {
    set_isa(isa);
    for (Bound b : {Bound{Format::F32, 1e-10}, Bound{Format::BF16, 1e-5} /* 2.3e-6 */,
                    Bound{Format::F16, 2e-7} /* 3.2e-8 */, Bound{Format::Q8_0, 1.5e-4} /* 4.8e-5 */,
                    Bound{Format::Q4_0, 1.5e-2} /* 5.4e-3 */}) {
      std::vector<float> y(exact.size());
      QMatrix::quantize(b.f, W.data(), rows, cols).matmul(x.data(), n, y.data());
      EXPECT_LT(nse(y, exact), b.nse) << isa_name(isa) << " " << format_name(b.f);
    }
  }
}

TEST(QMatrix, NamesAndBadShapes) {
  for (Format f : kFormats) EXPECT_EQ(parse_format(format_name(f)), f);
  EXPECT_FALSE(parse_format("q4"));
  EXPECT_DOUBLE_EQ(bits_per_weight(Format::Q4_0), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_weight(Format::Q8_0), 8.5);
  const std::vector<float> W(40, 1.0f);
  EXPECT_THROW(QMatrix::quantize(Format::Q8_0, W.data(), 1, 40), std::invalid_argument);
  EXPECT_NO_THROW(QMatrix::quantize(Format::F16, W.data(), 1, 40));
}

TEST(Dispatch, ForcesEverySupportedPathAndRefusesTheOthers) {
  PathGuard guard;
  for (Isa isa : {Isa::Scalar, Isa::AVX2, Isa::AVX512, Isa::AVX512_VNNI, Isa::AVX512_BF16}) {
    EXPECT_EQ(parse_isa(isa_name(isa)), isa);
    if (cpu_supports(isa)) {
      set_isa(isa);
      EXPECT_EQ(active_isa(), isa);
    } else {
      EXPECT_THROW(set_isa(isa), std::invalid_argument) << isa_name(isa);
    }
  }
  EXPECT_FALSE(parse_isa("sse2"));
  EXPECT_EQ(isa_from_setting(nullptr), best_isa());
  EXPECT_EQ(isa_from_setting("scalar"), Isa::Scalar);
  try {
    isa_from_setting("avx1024");
    ADD_FAILURE() << "an unknown path was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ELLM_QUANT_ISA='avx1024' is not a path; allowed: scalar, avx2"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(cpu_supports(best_isa()));
}

TEST(ThreadPool, CoversTheRangeOnceWithAnyThreadCount) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (std::int64_t n : {1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; i++) hits[i]++;
      });
      for (std::int64_t i = 0; i < n; i++) ASSERT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

// Jobs back to back, as decoding issues them: a worker still checking for work after one job
// (util/thread_pool.cpp, kSpinBeforeSleep) takes the next, and every share of every job runs
// exactly once with the caller seeing all its writes.
TEST(ThreadPool, BackToBackJobsEachRunEveryShareOnce) {
  ThreadPool pool(3);
  std::vector<int> hits(3 * 20000, 0);  // plain ints: the job's end must publish the shares' writes
  for (int job = 0; job < 20000; job++) {
    pool.parallel_for(3, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; i++) hits[std::size_t(job) * 3 + i]++;
    });
    ASSERT_EQ(hits[std::size_t(job) * 3] + hits[std::size_t(job) * 3 + 1] + hits[std::size_t(job) * 3 + 2], 3) << job;
  }
  for (std::size_t i = 0; i < hits.size(); i++) ASSERT_EQ(hits[i], 1) << i;
}

// The check for the next job is brief: an idle pool sleeps. Two workers that kept checking would
// use about as much CPU time as the wall time they waited (or a full core each).
TEST(ThreadPool, IdleWorkersSleep) {
  auto cpu_seconds = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
  };
  ThreadPool pool(3);
  pool.parallel_for(3, [](std::int64_t, std::int64_t) {});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // well past the 100 µs check
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(cpu_seconds() - cpu0, 0.03) << "idle workers used CPU time while the caller slept";
}

TEST(ThreadPool, RethrowsAndRunsNestedCallsInline) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(4, [](std::int64_t b, std::int64_t) {
    if (b > 0) throw std::runtime_error("share failed");
  }), std::runtime_error);
  std::atomic<int> inner{0};
  pool.parallel_for(2, [&](std::int64_t, std::int64_t) {
    pool.parallel_for(3, [&](std::int64_t b, std::int64_t e) { inner += int(e - b); });
  });
  EXPECT_EQ(inner.load(), 6);
  EXPECT_THROW(pool.set_threads(0), std::invalid_argument);
}

}  // namespace
}  // namespace ellm::quant
