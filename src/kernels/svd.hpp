// The top singular triplets of a matrix, for PiSSA's adapter initialisation (docs/PEFT.md):
// exactly (LAPACK's dgesdd through LAPACKE) or by the randomized range finder of Halko,
// Martinsson & Tropp (2011) with power iterations, as torch.svd_lowrank (PEFT's pissa_niter_N).
#pragma once

namespace ellm::kernels {

// W (m,n) row-major = U·diag(S)·Vᵀ: the r largest singular values S (r), descending, their left
// vectors U (m,r) and right vectors Vt (r,n), row-major. power_iters = 0: the exact SVD; n > 0:
// randomized with that many power iterations (a sketch of r + 8 columns, seeded: deterministic).
// Throws std::runtime_error when LAPACK reports a failure.
void top_singular_triplets(const double* W, int m, int n, int r, int power_iters, double* U,
                           double* S, double* Vt);

}  // namespace ellm::kernels
