// The AVX-512 VNNI path: the integer formats on vpdpbusd; the float formats are AVX-512's.
// Compiled with AVX-512 F/BW/VL + VNNI (CMakeLists.txt).
#include "quant/kernels_avx512.hpp"

namespace ellm::quant {
KernelTable avx512vnni_kernels() {
  KernelTable k = avx512_kernels();
  k.q8_0 = int_kernel<Avx512<true>, true>;
  k.q4_0 = int_kernel<Avx512<true>, false>;
  return k;
}
}  // namespace ellm::quant
