// Which instruction-set path the quantized kernels run, chosen at run time from CPUID (GCC's
// __builtin_cpu_supports, which also checks that the OS saves the AVX/AVX-512 registers).
// Each path includes the ones before it: AVX-512 needs F/BW/VL, VNNI adds vpdpbusd for the integer
// formats, BF16 adds vdpbf16ps for bf16 weights. ELLM_QUANT_ISA=scalar|avx2|avx512|avx512vnni|
// avx512bf16 forces a path (a path the CPU lacks is refused with a message naming what it has).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "quant/kernels.hpp"

namespace ellm::quant {

enum class Isa { Scalar, AVX2, AVX512, AVX512_VNNI, AVX512_BF16 };

const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16"
std::optional<Isa> parse_isa(std::string_view name);
bool cpu_supports(Isa isa);
Isa best_isa();             // the widest path this CPU supports
std::string supported_isas();  // "scalar avx2 ..." (for messages and the run report)

// The path in use: ELLM_QUANT_ISA if set (std::invalid_argument if it names an unknown path or
// one this CPU lacks), else best_isa(). Read once; set_isa() changes it (tests, benchmarks).
Isa active_isa();
// What ELLM_QUANT_ISA=value selects (nullptr or empty: best_isa()); throws as described above.
Isa isa_from_setting(const char* value);
void set_isa(Isa isa);  // std::invalid_argument if the CPU lacks it
const KernelTable& active_kernels();
const KernelTable& kernels_for(Isa isa);  // std::invalid_argument if the CPU lacks it

}  // namespace ellm::quant
