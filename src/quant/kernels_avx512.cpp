// The AVX-512 (F/BW/VL) path; compiled with -mavx512f -mavx512bw -mavx512vl (CMakeLists.txt).
#include "quant/kernels_avx512.hpp"

namespace ellm::quant {
KernelTable avx512_kernels() { return make_table<Avx512<false>>(); }
}  // namespace ellm::quant
