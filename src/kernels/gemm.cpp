#include "kernels/gemm.hpp"

#include <cblas.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "util/phases.hpp"
#include "util/thread_pool.hpp"

namespace ellm::kernels {
namespace {
CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

// A product is split over the pool from this many FLOPs (~40 µs of one core): below it, waking
// the workers costs more than it saves. One row of C (a GEMV: decoding one token) is bound by
// reading B, about 8x slower per FLOP than a GEMM: it splits from an 8x smaller product (a 1024 x
// 1024 fp32 weight, 4 MiB, ~100 µs from DRAM).
constexpr double kSplitFlops = double(1 << 23), kSplitFlopsGemv = kSplitFlops / 8;
// Block edges on multiples of this many rows or columns: whole register tiles of the sgemm kernels.
constexpr int kSplitAlign = 16;

// OpenBLAS is single-threaded from the start, whoever calls it first (a tool that never sizes the
// pool, a test): its own workers never wake, so they never spin against the pool.
const bool kOpenblasSingleThreaded = (openblas_set_num_threads(1), true);

// One sgemm call — or, for one row of C (decoding one token), sgemv: OpenBLAS's sgemm would pack
// the whole of B (the weights) on every call and read it three times instead of once.
void sgemm_call(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                int ldb, float beta, float* C, int ldc) {
  if (M != 1) {
    cblas_sgemm(CblasRowMajor, op(ta), op(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int incx = ta ? lda : 1;  // op(A)'s one row: A's first row, or its first column
  if (beta == 0.0f) std::fill(C, C + N, 0.0f);  // what sgemm's beta = 0 means, NaN or not in C
  if (tb)  // C[n] = Σ_k x[k] · B[n, k]
    cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, incx, beta, C, 1);
  else  // C[n] = Σ_k x[k] · B[k, n]
    cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, incx, beta, C, 1);
}

// The first row (or column) of piece p of P over n, on a multiple of kSplitAlign.
int piece_start(int n, int p, int pieces) {
  return p == pieces ? n : int(std::int64_t(n) * p / pieces) / kSplitAlign * kSplitAlign;
}
}  // namespace

// C is cut along its longer side, rows or columns, into one block per thread; each block is
// C's rows (columns) times all of the other operand, so no two threads write the same element and
// a given thread count always cuts the same blocks (deterministic per thread count). Measured
// against OpenBLAS's own threading on the step's shapes: within 1 % (docs/PERFORMANCE.md).
template <>
void gemm<float>(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  const PhaseScope phase(Phase::gemm);
  const int threads = rank_pool().threads();
  const bool by_rows = M >= N;
  const int side = by_rows ? M : N;
  const double split_from = M == 1 ? kSplitFlopsGemv : kSplitFlops;
  if (threads == 1 || inside_pool_job() || 2.0 * M * N * K < split_from || side < 2 * kSplitAlign) {
    sgemm_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int pieces = std::min(threads, side / kSplitAlign);
  rank_pool().parallel_for(pieces, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; p++) {
      const int b = piece_start(side, int(p), pieces), e = piece_start(side, int(p) + 1, pieces);
      if (by_rows) {  // rows b..e of op(A) and of C
        const float* a = ta ? A + b : A + std::size_t(b) * lda;
        sgemm_call(ta, tb, e - b, N, K, alpha, a, lda, B, ldb, beta, C + std::size_t(b) * ldc, ldc);
      } else {  // columns b..e of op(B) and of C
        const float* bp = tb ? B + std::size_t(b) * ldb : B + b;
        sgemm_call(ta, tb, M, e - b, K, alpha, A, lda, bp, ldb, beta, C + b, ldc);
      }
    }
  });
}

template <>
void gemm<double>(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                  const double* B, int ldb, double beta, double* C, int ldc) {
  const PhaseScope phase(Phase::gemm);
  cblas_dgemm(CblasRowMajor, op(ta), op(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <class T>
void gemm_naive(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
                int ldb, T beta, T* C, int ldc) {
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      double acc = 0.0;  // accumulate in double: this is the reference
      for (int k = 0; k < K; k++) {
        const T a = ta ? A[k * lda + i] : A[i * lda + k];
        const T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += double(a) * double(b);
      }
      T& c = C[i * ldc + j];
      c = T(alpha * acc + (beta == T(0) ? T(0) : beta * c));
    }
  }
}
template void gemm_naive<float>(bool, bool, int, int, int, float, const float*, int, const float*,
                                int, float, float*, int);
template void gemm_naive<double>(bool, bool, int, int, int, double, const double*, int,
                                 const double*, int, double, double*, int);

void set_kernel_threads(int n) { rank_pool().set_threads(n); }  // OpenBLAS: kOpenblasSingleThreaded
int kernel_threads() { return rank_pool().threads(); }

int default_kernel_threads() {
  if (const int n = environment_kernel_threads()) return n;
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return 1;
  return std::max(1, CPU_COUNT(&cpus));
}

int environment_kernel_threads() {
  const char* text = std::getenv("OPENBLAS_NUM_THREADS");
  if (!text || !*text) return 0;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(text, &end, 10);
  if (*end || errno || n < 1 || n > 4096)
    throw std::invalid_argument(std::string("OPENBLAS_NUM_THREADS: expected a thread count from 1 to 4096, got '") +
                                text + "'");
  return int(n);
}
std::string blas_config() { return openblas_get_config(); }
std::string blas_core() { return openblas_get_corename(); }

}  // namespace ellm::kernels
