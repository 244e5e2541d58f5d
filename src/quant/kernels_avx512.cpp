// The AVX-512 (F/BW/VL) path; compiled with -mavx512f -mavx512bw -mavx512vl (CMakeLists.txt).
#include "quant/kernels_avx512.hpp"

namespace ellm::quant {
KernelTable avx512_kernels() {
  KernelTable k = make_table<Avx512<false>>();
  k.bf16 = bf16_avx512<false>;
  return k;
}
}  // namespace ellm::quant
