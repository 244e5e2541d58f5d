#!/usr/bin/env bash
# The fuzzing campaign (docs/RELIABILITY.md): builds the libFuzzer targets of tests/fuzz/ with
# Debian's clang (ASan + UBSan + coverage, build-fuzz/) and runs each for RUNS inputs (default
# 10⁶) from its seed corpus, niced. A crash, a sanitizer report, an input over 60 s (wall time:
# the 10 s of the test suite's short runs fired falsely on a starved, niced process of a loaded
# machine) or over 2 GB of memory stops that target and leaves the input as build-fuzz/crash-*
# (timeout-*); the other targets still run, and the exit code says whether any failed.
#   scripts/fuzz.sh [RUNS] [TARGET...]      targets: job set report safetensors tokens instructions corpus
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-1000000}
shift || true
[[ $runs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: RUNS must be a whole number, not '$runs'" >&2; exit 2; }
targets=("$@")
((${#targets[@]})) || targets=(job set report safetensors tokens instructions corpus)
command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ not found (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2; exit 2; }
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work} CCACHE_DIR=${CCACHE_DIR:-/work/.ccache}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CXX=clang++ CC=clang cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DELLM_FUZZ=ON \
  -DELLM_BUILD_BENCH=OFF "${launcher[@]}" > /dev/null
nice -n 10 cmake --build "$root/build-fuzz" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"
cd "$root/build-fuzz"
failed=0
for t in "${targets[@]}"; do
  echo "== fuzz_$t: $runs runs" >&2
  start=$SECONDS
  code=0
  nice -n 10 bash "$root/tests/fuzz/run.sh" "tests/fuzz/fuzz_$t" "$root/tests/fuzz/seeds/$t" 0 -runs="$runs" \
    -timeout=60 > "fuzz_$t.log" 2>&1 || code=$?
  grep -aE "stat::|Done|ERROR|SUMMARY|crash-|timeout-|standalone" "fuzz_$t.log" >&2 || true
  echo "== fuzz_$t: exit $code after $((SECONDS - start)) s (log: build-fuzz/fuzz_$t.log)" >&2
  ((code == 0)) || failed=1
done
exit "$failed"
