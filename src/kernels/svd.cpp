#include "kernels/svd.hpp"

#include <lapacke.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "util/rng.hpp"

namespace ellm::kernels {
namespace {

void check(lapack_int info, const char* routine) {
  if (info != 0) throw std::runtime_error(std::string("LAPACK ") + routine + " failed (info " + std::to_string(info) + ")");
}

// The thin SVD of W (m,n): U (m,k), S (k), Vt (k,n) with k = min(m,n); W is overwritten.
void thin_svd(double* W, int m, int n, std::vector<double>& U, std::vector<double>& S,
              std::vector<double>& Vt) {
  const int k = std::min(m, n);
  U.resize(std::size_t(m) * k);
  S.resize(k);
  Vt.resize(std::size_t(k) * n);
  check(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, W, n, S.data(), U.data(), k, Vt.data(), n), "dgesdd");
}

// Q (m,k) ← an orthonormal basis of the columns of Y (m,k), in place.
void orthonormalize(std::vector<double>& Y, int m, int k) {
  std::vector<double> tau(k);
  check(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, k, Y.data(), k, tau.data()), "dgeqrf");
  check(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, k, k, Y.data(), k, tau.data()), "dorgqr");
}

}  // namespace

void top_singular_triplets(const double* W, int m, int n, int r, int power_iters, double* U,
                           double* S, double* Vt) {
  std::vector<double> u, s, vt;
  int k = std::min(m, n);
  std::vector<double> Q;  // randomized: W ≈ Q·(Qᵀ·W), Q (m,k)
  std::vector<double> small;
  if (power_iters == 0) {
    small.assign(W, W + std::size_t(m) * n);
    thin_svd(small.data(), m, n, u, s, vt);
  } else {
    k = std::min(k, r + 8);
    Rng rng(0x5eed'5eedULL);
    std::vector<double> omega(std::size_t(n) * k), Z(std::size_t(n) * k);
    for (double& x : omega) x = rng.normal();
    Q.resize(std::size_t(m) * k);
    gemm<double>(false, false, m, k, n, 1, W, n, omega.data(), k, 0, Q.data(), k);  // W·Ω
    orthonormalize(Q, m, k);
    for (int it = 0; it < power_iters; it++) {  // Q ← orth(W·orth(Wᵀ·Q))
      gemm<double>(true, false, n, k, m, 1, W, n, Q.data(), k, 0, Z.data(), k);
      orthonormalize(Z, n, k);
      gemm<double>(false, false, m, k, n, 1, W, n, Z.data(), k, 0, Q.data(), k);
      orthonormalize(Q, m, k);
    }
    small.resize(std::size_t(k) * n);  // Qᵀ·W (k,n) = Ũ·S·Vᵀ, U = Q·Ũ
    gemm<double>(true, false, k, n, m, 1, Q.data(), k, W, n, 0, small.data(), n);
    thin_svd(small.data(), k, n, u, s, vt);
    std::vector<double> qu(std::size_t(m) * k);
    gemm<double>(false, false, m, k, k, 1, Q.data(), k, u.data(), k, 0, qu.data(), k);
    u = std::move(qu);
  }
  const int kk = int(s.size());
  for (int j = 0; j < m; j++)
    for (int c = 0; c < r; c++) U[std::size_t(j) * r + c] = u[std::size_t(j) * kk + c];
  std::copy(s.begin(), s.begin() + r, S);
  std::copy(vt.begin(), vt.begin() + std::size_t(r) * n, Vt);
}

}  // namespace ellm::kernels
