#include "quant/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace ellm::quant {
namespace {

constexpr Isa kAll[] = {Isa::Scalar, Isa::AVX2, Isa::AVX512, Isa::AVX512_VNNI, Isa::AVX512_BF16};

// Built only when first used, after the path was checked against the CPU (building a table runs
// no SIMD instruction, but keeps the order obvious).
const KernelTable& table(Isa isa) {
  switch (isa) {
    case Isa::Scalar: { static const KernelTable t = scalar_kernels(); return t; }
    case Isa::AVX2: { static const KernelTable t = avx2_kernels(); return t; }
    case Isa::AVX512: { static const KernelTable t = avx512_kernels(); return t; }
    case Isa::AVX512_VNNI: { static const KernelTable t = avx512vnni_kernels(); return t; }
    case Isa::AVX512_BF16: break;
  }
  static const KernelTable t = avx512bf16_kernels();
  return t;
}

Isa checked(Isa isa, const char* origin) {
  if (!cpu_supports(isa))
    throw std::invalid_argument(std::string(origin) + ": this CPU does not support the '" + isa_name(isa) +
                                "' path; it supports: " + supported_isas());
  return isa;
}

Isa from_environment() { return isa_from_setting(std::getenv("ELLM_QUANT_ISA")); }

std::atomic<int>& current() {
  static std::atomic<int> isa{int(from_environment())};
  return isa;
}

}  // namespace

Isa isa_from_setting(const char* env) {
  if (!env || !*env) return best_isa();
  const auto isa = parse_isa(env);
  if (!isa)
    throw std::invalid_argument(std::string("ELLM_QUANT_ISA='") + env +
                                "' is not a path; allowed: scalar, avx2, avx512, avx512vnni, avx512bf16");
  return checked(*isa, "ELLM_QUANT_ISA");
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
    case Isa::AVX512_VNNI: return "avx512vnni";
    case Isa::AVX512_BF16: return "avx512bf16";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kAll)
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

bool cpu_supports(Isa isa) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::AVX2: return avx2;
    case Isa::AVX512: return avx512;
    case Isa::AVX512_VNNI: return vnni;
    case Isa::AVX512_BF16: return vnni && __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

Isa best_isa() {
  Isa best = Isa::Scalar;
  for (Isa isa : kAll)
    if (cpu_supports(isa)) best = isa;
  return best;
}

std::string supported_isas() {
  std::string s;
  for (Isa isa : kAll)
    if (cpu_supports(isa)) s += std::string(s.empty() ? "" : " ") + isa_name(isa);
  return s;
}

Isa active_isa() { return Isa(current().load()); }
void set_isa(Isa isa) { current().store(int(checked(isa, "set_isa"))); }
const KernelTable& active_kernels() { return table(active_isa()); }
const KernelTable& kernels_for(Isa isa) { return table(checked(isa, "kernels_for")); }

}  // namespace ellm::quant
