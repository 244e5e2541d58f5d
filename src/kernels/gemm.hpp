// Row-major GEMM for float (OpenBLAS sgemm) and double (dgemm, the gradient-check reference),
// and the naive triple loop every fast path is tested against.
#pragma once
#include <string>

namespace ellm::kernels {

// C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, all row-major with leading dimensions.
template <class T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc);

template <class T>
void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda,
                const T* B, int ldb, T beta, T* C, int ldc);

// The rank's kernel threads: the size of the rank's pool (util/thread_pool.hpp), which runs every
// kernel — our own and the GEMMs. OpenBLAS itself stays single-threaded: gemm<float> splits a
// large product into one block of C per pool thread, each a single-threaded sgemm, so OpenBLAS's
// own workers (which spin for ~2^28 cycles after each call) never compete with the pool for the
// rank's cores. docs/PERFORMANCE.md (issue 15) has the measurement behind this choice.
void set_kernel_threads(int n);
int kernel_threads();
// OPENBLAS_NUM_THREADS as a thread count for set_kernel_threads: 0 when unset or empty; an error
// naming the variable (std::invalid_argument) when it is not an integer from 1 to 4096.
int environment_kernel_threads();
// OPENBLAS_NUM_THREADS when set, else the CPUs this process may run on (its affinity mask): for
// tools that run without the placement of `run` (generate, the benchmarks).
int default_kernel_threads();
std::string blas_config();  // openblas_get_config(): version, target, threading
std::string blas_core();    // the kernel family chosen at run time (or forced by OPENBLAS_CORETYPE)

}  // namespace ellm::kernels
