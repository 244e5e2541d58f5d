// Quantized matmul kernels (src/quant) against the machine's limits, measured side by side in one
// run: the DRAM read bandwidth (a streaming sum over a buffer far above the L3) and OpenBLAS sgemm.
// - Decode GEMV, W 4096 x 14336 (out x in) per format, 1 and 2 threads: time against the bandwidth
//   bound (weight bytes / read bandwidth at the same thread count), back to back over copies of
//   the matrix that together exceed the L3 (decoding's steady state), and for the first call
//   after the probe ("cold").
// - Prefill GEMM, n = 512 tokens, per format, against sgemm of the same shape (x (512, 14336) . W^T).
// The GEMV figures are medians over 4 x REPEATS passes, the others over REPEATS timed calls; one
// warm-up each.
//
// usage: bench_quant [REPEATS] [THREADS...]    (default: 7, threads 1 2); ELLM_QUANT_ISA picks the
// path; ELLM_BENCH_GEMV_ONLY=1 skips the prefill GEMMs (and sgemm); ELLM_BENCH_FORMATS=int8,int4
// (a comma-separated list) measures only those formats.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/gemm.hpp"
#include "quant/dispatch.hpp"
#include "quant/qmatrix.hpp"
#include "util/rng.hpp"
#include "util/thread_pool.hpp"

using namespace ellm;
using namespace ellm::quant;

namespace {

constexpr int kRows = 4096, kCols = 14336, kTokens = 512;
constexpr Format kFormats[] = {Format::F32, Format::BF16, Format::F16, Format::Q8_0, Format::Q4_0};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `repeats` calls of fn after one warm-up call.
double median_time(int repeats, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < repeats; i++) {
    const double t0 = now();
    fn();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_vector(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(rng.normal());
  return v;
}

// Sum of `words` 64-bit words (a multiple of 4 * S) read as S sequential streams side by side,
// one 256-bit accumulator per stream so the adds stay off the critical path, each stream
// optionally prefetched kPrefetch bytes ahead (as the decode kernels do). How many fills are in
// flight depends on the number of streams and on prefetching (a GEMV over eight interleaved rows
// beats a one-stream sum), so the probe tries several and keeps the fastest: the bound is the best
// read rate any of these patterns reaches. AVX2 only: the benchmark runs on Zen 3 too.
template <std::size_t S, int kPrefetch = 0>
__attribute__((target("avx2"))) std::uint64_t stream_sum(const std::uint64_t* p, std::size_t words) {
  __m256i a[S];
  for (auto& v : a) v = _mm256_setzero_si256();
  const std::size_t vectors = words / 4 / S;  // 256-bit vectors per stream
  const auto* v = reinterpret_cast<const __m256i*>(p);
  for (std::size_t i = 0; i < vectors; i++)
    for (std::size_t j = 0; j < S; j++) {
      if constexpr (kPrefetch > 0)
        if (i % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(v + j * vectors + i) + kPrefetch, _MM_HINT_T0);
      a[j] = _mm256_add_epi64(a[j], _mm256_loadu_si256(v + j * vectors + i));
    }
  __m256i s = a[0];
  for (std::size_t j = 1; j < S; j++) s = _mm256_add_epi64(s, a[j]);
  return std::uint64_t(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 3));
}

// The same sum read as the float decode kernels read their weights: tiles of R adjacent rows of
// `row_words` words (the matrix's row length), side by side along the rows.
template <std::size_t R>
__attribute__((target("avx2"))) std::uint64_t row_tile_sum(const std::uint64_t* p, std::size_t words, std::size_t row_words) {
  __m256i a[R];
  for (auto& v : a) v = _mm256_setzero_si256();
  const std::size_t row_vectors = row_words / 4, tiles = words / (R * row_words);
  const auto* v = reinterpret_cast<const __m256i*>(p);
  for (std::size_t t = 0; t < tiles; t++, v += R * row_vectors)
    for (std::size_t i = 0; i < row_vectors; i++)
      for (std::size_t j = 0; j < R; j++) a[j] = _mm256_add_epi64(a[j], _mm256_loadu_si256(v + j * row_vectors + i));
  __m256i s = a[0];
  for (std::size_t j = 1; j < R; j++) s = _mm256_add_epi64(s, a[j]);
  return std::uint64_t(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 3));
}

// The read-bandwidth probe: a streaming sum over 256 MiB (far above the L3), split over the pool;
// one pass is the best of 1, 4, 8 and 16 streams per thread, 8 streams prefetched 512 bytes
// ahead, and tiles of 8 adjacent rows of the benchmark's matrix (the fp32 GEMV's own pattern: with
// only far-apart streams, fp32 on 2 threads read faster than its "bound" in some passes).
struct BandwidthProbe {
  static constexpr std::size_t kRowWords = kCols / 2;  // one fp32 row of the matrix, in 64-bit words
  // A share is whole 8-row tiles, which is also a multiple of 4 words per vector x 16 streams.
  static constexpr std::size_t kWordAlign = 8 * kRowWords;
  std::vector<std::uint64_t> buf = std::vector<std::uint64_t>((std::size_t(256) << 20) / 8 + 8, 1);
  // 64-byte aligned like the kernels' weights: no load of the probe straddles two cache lines.
  const std::uint64_t* words() const {
    return buf.data() + (64 - reinterpret_cast<std::uintptr_t>(buf.data()) % 64) % 64 / 8;
  }
  std::vector<std::uint64_t> sums = std::vector<std::uint64_t>(64);
  std::size_t share() const { return (buf.size() - 8) / rank_pool().threads() / kWordAlign * kWordAlign; }
  // Seconds for sum(part's words, share) on every thread's part.
  template <class Sum>
  double seconds_of(Sum sum) {
    sums.resize(std::max(sums.size(), std::size_t(8) * rank_pool().threads()));
    const double t0 = now();
    rank_pool().parallel_for(rank_pool().threads(), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t part = b; part < e; part++)  // one cache line of sums per thread
        sums[part * 8] = sum(words() + part * share(), share());
    });
    return now() - t0;
  }
  double seconds() {
    return std::min({seconds_of(stream_sum<1>), seconds_of(stream_sum<4>), seconds_of(stream_sum<8>),
                     seconds_of(stream_sum<16>), seconds_of(stream_sum<8, 512>),
                     seconds_of([](const std::uint64_t* p, std::size_t n) { return row_tile_sum<8>(p, n, kRowWords); })});
  }
  double bytes() const { return double(share() * rank_pool().threads() * 8); }
};

// The formats ELLM_BENCH_FORMATS names (all when unset); an unknown name ends the run with a message.
std::vector<Format> formats_to_measure() {
  const char* list = std::getenv("ELLM_BENCH_FORMATS");
  if (!list) return {std::begin(kFormats), std::end(kFormats)};
  std::vector<Format> out;
  if (!*list) {
    std::fprintf(stderr, "bench_quant: ELLM_BENCH_FORMATS is empty (allowed: a comma-separated list of fp32, bf16, fp16, int8, int4)\n");
    std::exit(2);
  }
  for (std::string_view rest = list; !rest.empty();) {
    const std::string_view name = rest.substr(0, rest.find(','));
    rest.remove_prefix(std::min(rest.size(), name.size() + 1));
    const auto f = parse_format(name);
    if (!f) {
      std::fprintf(stderr, "bench_quant: ELLM_BENCH_FORMATS: unknown format '%.*s' (allowed: fp32, bf16, fp16, int8, int4)\n",
                   int(name.size()), name.data());
      std::exit(2);
    }
    out.push_back(*f);
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string cpu_line(const char* key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string line;
  std::getline(in, line);
  return line;
}

std::string simd_flags() {
  std::string out;
  std::string flags = cpu_line("flags") + " ";
  for (std::size_t p = 0, q; (q = flags.find(' ', p)) != std::string::npos; p = q + 1) {
    const std::string f = flags.substr(p, q - p);
    if (f.rfind("avx", 0) == 0 || f == "fma" || f == "f16c") out += f + " ";
  }
  return out;
}

// The kernel's own speed with the memory system out of the way: GEMV bytes per second on a
// matrix of 128 rows and about 512 KiB that stays in the L2 across repetitions. Well above
// the DRAM figure means the DRAM GEMV is bound by memory; near it means by the kernel.
double in_cache_gemv_rate(Format f, const float* W, const float* x, float* y, int repeats) {
  constexpr int kCacheRows = 128, kCalls = 64;
  const int cache_cols = int(512 * 1024 * 8 / bits_per_weight(f) / kCacheRows) / 32 * 32;
  const QMatrix m = QMatrix::quantize(f, W, kCacheRows, cache_cols);
  const double t = median_time(repeats, [&] {
    for (int i = 0; i < kCalls; i++) m.matmul(x, 1, y);
  });
  return double(m.bytes()) * kCalls / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 7;
  std::vector<int> thread_counts;
  for (int i = 2; i < argc; i++) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 2};
  const std::vector<Format> formats = formats_to_measure();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("CPU: %s (family %s, model %s)\nSIMD flags: %s\n", cpu_line("model name").c_str(),
              cpu_line("cpu family").c_str(), cpu_line("model\t").c_str(), simd_flags().c_str());
  std::printf("quant path: %s (supported: %s); OpenBLAS core %s, OPENBLAS_CORETYPE=%s; median of %d\n\n",
              isa_name(active_isa()), supported_isas().c_str(), kernels::blas_core().c_str(),
              coretype ? coretype : "(unset)", repeats);

  const auto W = random_vector(std::size_t(kRows) * kCols, 1);
  const auto x1 = random_vector(kCols, 2), xn = random_vector(std::size_t(kTokens) * kCols, 3);
  std::vector<float> y(std::size_t(kTokens) * kRows);

  std::printf("load average at start: %s\n\n", loadavg().c_str());
  BandwidthProbe probe;
  for (int threads : thread_counts) {
    kernels::set_kernel_threads(threads);
    const bool gemv_only = std::getenv("ELLM_BENCH_GEMV_ONLY") != nullptr;
    auto maybe = [&](const std::function<void()>& fn) { return gemv_only ? 0.0 : median_time(std::max(3, repeats / 2), fn); };
    const double sgemm = maybe([&] {
      kernels::gemm<float>(false, true, kTokens, kRows, kCols, 1.0f, xn.data(), kCols, W.data(), kCols, 0.0f,
                           y.data(), kRows);
    });
    const double flop = 2.0 * kTokens * kRows * kCols;
    if (gemv_only) std::printf("## %d thread(s) (GEMV only: no sgemm, no prefill GEMM)\n\n", threads);
    else
      std::printf("## %d thread(s): OpenBLAS sgemm %dx%dx%d: %.1f ms (%.1f GFLOP/s)\n\n", threads, kTokens, kRows,
                  kCols, sgemm * 1e3, flop / sgemm / 1e9);
    std::printf("| format | weight MB | DRAM read GB/s | GEMV ms | bound ms | GEMV / bound | cold GEMV / bound | GEMV GB/s | in-L2 GEMV GB/s | GEMM n=%d ms | GFLOP/s | vs sgemm |\n",
                kTokens);
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (Format f : formats) {
      const QMatrix m = QMatrix::quantize(f, W.data(), kRows, kCols);
      // Enough copies that a sweep through them (>= 512 MB) evicts the L3 between reads of one.
      const std::size_t copies = std::max<std::size_t>(3, (std::size_t(512) << 20) / m.bytes() + 1);
      std::vector<QMatrix> ms(copies, m);
      // A pass: the bandwidth probe, then one GEMV on each copy back to back, as a decode step
      // reads its layers. The first call of the sweep ("cold") pays for what the probe's 256 MB
      // evicted (page-table entries, the prefetchers' training); the others are decoding's
      // steady state. Probe and sweep alternate, so both see the same load on this shared
      // machine; each figure is the median of the per-pass ratios.
      std::vector<double> bws, gemvs, ratios, cold_ratios;
      for (int i = -1; i < repeats * 4; i++) {
        const double bw = probe.bytes() / probe.seconds();
        const double t0 = now();
        ms[0].matmul(x1.data(), 1, y.data());
        const double t1 = now();
        for (std::size_t c = 1; c < copies; c++) ms[c].matmul(x1.data(), 1, y.data());
        const double gemv = (now() - t1) / double(copies - 1);
        if (i < 0) continue;  // warm-up
        bws.push_back(bw);
        gemvs.push_back(gemv);
        ratios.push_back(double(m.bytes()) / bw / gemv);
        cold_ratios.push_back(double(m.bytes()) / bw / (t1 - t0));
      }
      ms.clear();
      const double gemm = maybe([&] { m.matmul(xn.data(), kTokens, y.data()); });
      const double bw = median(bws), gemv = median(gemvs);
      std::printf("| %s | %.1f | %.1f | %.3f | %.3f | %.0f %% | %.0f %% | %.1f | %.1f |", format_name(f), m.bytes() / 1e6, bw / 1e9,
                  gemv * 1e3, m.bytes() / bw * 1e3, 100 * median(ratios), 100 * median(cold_ratios), m.bytes() / gemv / 1e9,
                  in_cache_gemv_rate(f, W.data(), x1.data(), y.data(), repeats));
      if (gemv_only) std::printf(" — | — | — |\n");
      else std::printf(" %.1f | %.1f | %.2fx |\n", gemm * 1e3, flop / gemm / 1e9, sgemm / gemm);
      std::fflush(stdout);
    }
    std::printf("\nload average: %s\n\n", loadavg().c_str());
  }
}
