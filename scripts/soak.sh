#!/usr/bin/env bash
# Soak: runs the same small job again and again for MINUTES and records, per iteration, the
# peak resident set and the peak number of open file descriptors of the efficientllm process
# (polled from /proc every 0.2 s), its exit code and its wall time. Each job holds RUNS runs, so
# a leak across runs inside one process shows in the run rows of its report too. A flat column
# is the pass criterion (docs/RELIABILITY.md records the figures).
#   scripts/soak.sh [--bin BUILD/efficientllm] [--minutes 60] [--runs 5] [--out DIR]
# Writes DIR/soak.csv and prints a summary. Run it niced on a shared machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/efficientllm" minutes=60 runs=5 out=""
while (($#)); do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "soak.sh: unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ && $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "soak.sh: --minutes and --runs take whole numbers" >&2; exit 2; }
[[ -x $bin ]] || { echo "soak.sh: $bin is not an executable (build first: scripts/build.sh)" >&2; exit 2; }
[[ -n $out ]] || out=$(mktemp -d /tmp/ellm_soak.XXXXXX)
mkdir -p -- "$out"
export OPENBLAS_NUM_THREADS=1

job="$out/soak.json"
{
  printf '{"name": "soak", "defaults": {"model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "seq_len": 32},\n'
  printf ' "training": {"steps": 30, "batch_size": 4, "warmup_steps": 2, "warmup_iters": 2, "eval_every": 15, "eval_batches": 2},\n'
  printf ' "data": {"corpus": ["/usr/share/games/fortunes/fortunes"]}}, "runs": ['
  for ((i = 0; i < runs; i++)); do printf '%s{"name": "r%d", "training": {"seed": %d}}' "$([[ $i -gt 0 ]] && echo ,)" "$i" "$i"; done
  printf ']}\n'
} > "$job"

echo "iteration,seconds,exit_code,peak_rss_kib,peak_open_fds" > "$out/soak.csv"
deadline=$((SECONDS + minutes * 60))
iteration=0
while ((SECONDS < deadline)); do
  iteration=$((iteration + 1))
  dir="$out/iter"
  rm -rf -- "$dir"
  start=$SECONDS
  "$bin" run "$job" --out "$dir" > "$out/last.log" 2>&1 &
  pid=$!
  peak_rss=0 peak_fds=0
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
    [[ -n $rss && $rss -gt $peak_rss ]] && peak_rss=$rss
    [[ -n $fds && $fds -gt $peak_fds ]] && peak_fds=$fds
    sleep 0.2
  done
  code=0
  wait "$pid" || code=$?
  echo "$iteration,$((SECONDS - start)),$code,$peak_rss,$peak_fds" >> "$out/soak.csv"
  if ((code != 0)); then echo "soak.sh: iteration $iteration failed (exit $code); log: $out/last.log" >&2; fi
done

/usr/bin/python3 - "$out/soak.csv" "$minutes" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit("soak.sh: no iteration finished")
rss = [int(r["peak_rss_kib"]) for r in rows]
fds = [int(r["peak_open_fds"]) for r in rows]
bad = [r for r in rows if r["exit_code"] != "0"]
half = len(rows) // 2 or 1
print(f"soak: {len(rows)} iterations in {sys.argv[2]} min; failures {len(bad)}")
print(f"  peak RSS KiB: first {rss[0]}, min {min(rss)}, max {max(rss)}, last {rss[-1]}; "
      f"mean first half {sum(rss[:half]) / half:.0f}, second half {sum(rss[half:]) / max(1, len(rss) - half):.0f}")
print(f"  peak open fds: first {fds[0]}, min {min(fds)}, max {max(fds)}, last {fds[-1]}")
PY
