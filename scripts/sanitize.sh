#!/usr/bin/env bash
# Builds efficientllm and its tests with a sanitizer in its own build directory and runs them:
#   scripts/sanitize.sh address [CTEST_REGEX]   ASan + UBSan, build-asan/
#   scripts/sanitize.sh thread  [CTEST_REGEX]   TSan, build-tsan/
# TARGETS="efficientllm test_gather ..." builds only those (default: everything); JOBS (default 2)
# sets the build's and ctest's parallelism.
# CTEST_REGEX defaults to the unit tests, the MPI unit tests and the MPI end-to-end tests that fit
# a sanitizer's slowdown (docs/RELIABILITY.md says what CI runs). Suppressions:
# tests/sanitize/*.supp (third-party libraries only, each one justified there). Heavy: niced.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-}
case "$kind" in
  address) dir="$root/build-asan" ;;
  thread) dir="$root/build-tsan" ;;
  *) echo "usage: scripts/sanitize.sh address|thread [CTEST_REGEX]" >&2; exit 2 ;;
esac
# Default: every unit, MPI unit and fuzz test, and the MPI end-to-end tests of the data and tensor
# parallel paths, the report and the CLI's bad-input messages (not the Slurm, netns and Hugging
# Face tests: they exercise other programs, not our code, and take most of the time).
regex=${2:-}
e2e='^e2e\.(report|report_command|cli_errors|dp_equivalence|tp_equivalence|grad_sync|instructions)$'
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work} CCACHE_DIR=${CCACHE_DIR:-/work/.ccache}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# -O1 -g1: the optimisation level the sanitizers' documentation recommends, and line tables only
# (enough for their stack traces) instead of RelWithDebInfo's full -O2 -g, to keep the build
# short on 2 cores.
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DELLM_SANITIZE="$kind" \
  -DELLM_BUILD_BENCH=OFF "${launcher[@]}" > /dev/null
targets=()
[[ -n ${TARGETS:-} ]] && read -ra targets <<< "--target $TARGETS"
start=$SECONDS
nice -n 10 cmake --build "$dir" -j "${JOBS:-2}" "${targets[@]}"
echo "sanitize.sh: build took $((SECONDS - start)) s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"

# The unit and MPI tests set their own thread counts (tests/CMakeLists.txt). The e2e tests run two
# kernel threads per rank (OPENBLAS_NUM_THREADS sizes the rank's thread pool too,
# src/cli/node_setup.cpp), so each rank's pool has a worker running beside the sampler, the
# watchdog and the overlapped communication.
export OPENBLAS_NUM_THREADS=2
# Leaks in efficientllm are errors; abort on the first report so ctest sees a failure.
# fast_unwind_on_malloc=0 and Open MPI's plugins kept loaded: so that leaks in third-party code
# have stacks its suppressions can match (tests/sanitize/lsan.supp).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# ignore_noninstrumented_modules: why, in tests/sanitize/tsan.supp.
export TSAN_OPTIONS="ignore_noninstrumented_modules=1:suppressions=$root/tests/sanitize/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
cd "$dir"
if [[ -n $regex ]]; then
  nice -n 10 ctest -j "${JOBS:-2}" --output-on-failure --timeout 1800 -R "$regex"
else
  nice -n 10 ctest -j "${JOBS:-2}" --output-on-failure --timeout 1800 -E '^e2e\.'
  nice -n 10 ctest -j "${JOBS:-2}" --output-on-failure --timeout 1800 -R "$e2e"
fi
