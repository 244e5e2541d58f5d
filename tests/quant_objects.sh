#!/bin/bash
# The quantized kernels must run on AVX2-only CPUs from a binary built on an AVX-512 one
# (docs/QUANTIZATION.md, "Build"): the baseline objects of src/quant contain no 256/512-bit
# instruction, the AVX2 object no 512-bit one, and every path object exports nothing but its
# kernel table (no weak inline function the linker could pick for code running elsewhere).
# With --prefetch instead: every SIMD path object holds the decode kernels' software prefetches
# (GCC deleted calls to an out-of-line function that only prefetches; src/quant/kernels_simd.hpp).
# usage: quant_objects.sh [--prefetch] OBJECT...   (the objects of the ellm_quant library)
set -u
fail=0
mode=targets
if [ "${1:-}" = --prefetch ]; then mode=prefetch; shift; fi
for obj in "$@"; do
  name=$(basename "$obj")
  asm=$(objdump -d --no-show-raw-insn "$obj")
  if [ "$mode" = prefetch ]; then
    case "$name" in
      kernels_avx2.*|kernels_avx512*)
        n=$(grep -c 'prefetcht0' <<<"$asm")
        if [ "$n" -eq 0 ]; then echo "FAIL: $name has no prefetcht0: the decode prefetch was compiled out"; fail=1; fi ;;
    esac
    continue
  fi
  case "$name" in
    kernels_avx2.*) bad=$(grep -c '%zmm' <<<"$asm") ;;
    kernels_avx512*) bad=0 ;;
    *) bad=$(grep -cE '%[yz]mm' <<<"$asm") ;;
  esac
  if [ "$bad" -ne 0 ]; then echo "FAIL: $name has $bad instructions wider than its target"; fail=1; fi
  case "$name" in
    kernels_*)
      # DW.ref.__gxx_personality_v0 (sanitizer builds): a pointer to the C++ runtime's exception
      # personality routine, data every object may share, no code of this target.
      exported=$(nm -C --defined-only "$obj" | awk '$2 ~ /^[TWVDBR]$/ {$1=""; $2=""; print}' |
                 grep -v -e '_kernels()$' -e '^ *DW\.ref\.__gxx_personality_v0$')
      if [ -n "$exported" ]; then echo "FAIL: $name exports more than its table:"; echo "$exported"; fail=1; fi ;;
  esac
done
[ "$#" -ge 8 ] || { echo "FAIL: expected the 8+ objects of src/quant, got $#"; fail=1; }
[ "$fail" -eq 0 ] && echo "ok: $# objects"
exit $fail
