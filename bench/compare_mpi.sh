#!/usr/bin/env bash
# Data parallelism through the real binary against one process with the same cores: the
# reference job (jobs/reference.json, global batch 8) as dp = 2 ranks of one thread each under
# mpirun, bound one rank per core, against dp = 1 with 2 threads (the rank's pool, GEMMs included),
# alternated ROUNDS times so both see the same machine state. Prints tokens/s of each (median of
# the rounds), their ratio (issue 15's goal: dp = 2 within 10 % of the single process), the
# exposed data-parallel sync per step and the step by phase (ms, the ranks' mean: docs/METRICS.md).
#   bench/compare_mpi.sh [rounds=1] [--set key=value ...]   (extra --set go to both runs)
# As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=1
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
if ((rounds < 1)); then echo "compare_mpi.sh: rounds must be >= 1, got $rounds" >&2; exit 2; fi
for ((i = 1; i <= $#; i += 2)); do
  if [[ ${!i} != --set ]]; then
    echo "compare_mpi.sh: expected [rounds] then --set key=value pairs, got '${!i}'" >&2
    exit 2
  fi
done
binary=build/efficientllm
[[ -x $binary ]] || { echo "compare_mpi.sh: $binary not built (ninja -C build efficientllm)" >&2; exit 2; }
out=$(mktemp -d /tmp/compare_mpi.XXXXXX)
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  mpirun -np 2 --bind-to core --map-by core -x OPENBLAS_NUM_THREADS=1 \
    $binary run jobs/reference.json --set parallel.dp=2 "$@" --out "$out/dp2-$r" > "$out/dp2-$r.log" 2>&1
  mpirun -np 1 --bind-to none -x OPENBLAS_NUM_THREADS=2 \
    $binary run jobs/reference.json --set parallel.dp=1 "$@" --out "$out/dp1-$r" > "$out/dp1-$r.log" 2>&1
done
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def run(layout, r):
    return json.load(open(f"{out}/{layout}-{r}/report.json"))["runs"][0]
def row(layout, label):
    runs = [run(layout, r) for r in range(1, rounds + 1)]
    tok = statistics.median(x["throughput"]["tokens_per_s"] for x in runs)
    step = statistics.median(x["latency"]["step"]["mean"] for x in runs) * 1e3
    comm = statistics.median(x["latency"]["communication"]["mean"] for x in runs) * 1e3
    dp = statistics.median(x["latency"]["data_parallel"]["mean"] for x in runs) * 1e3
    each = ", ".join(f'{x["throughput"]["tokens_per_s"]:.0f}' for x in runs)
    print(f"{label:26s} tokens/s {tok:7.0f} ({each})  step {step:7.1f} ms  communication {comm:6.1f} ms  data-parallel {dp:6.1f} ms")
    ranks = [k for x in runs for k in x["ranks"]]
    phases = {p: statistics.mean(k["phase_seconds"][p] for k in ranks) * 1e3 for p in ranks[0]["phase_seconds"]}
    print(" " * 27 + "phases ms: " + "  ".join(f"{p} {ms:.1f}" for p, ms in phases.items()))
    return tok
two = row("dp2", "dp=2 x 1 thread (mpirun)")
one = row("dp1", "dp=1 x 2 threads")
print(f"ratio dp=2 / dp=1 tokens/s: {two / one:.3f} (goal: >= 0.90)")
PY
