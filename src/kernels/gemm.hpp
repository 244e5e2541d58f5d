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

// OpenBLAS threads used by every gemm of this process.
void set_blas_threads(int n);
int blas_threads();
std::string blas_config();  // openblas_get_config(): version, target, threading
std::string blas_core();    // the kernel family chosen at run time (or forced by OPENBLAS_CORETYPE)

}  // namespace ellm::kernels
