# The data-parallel sync schedules are equivalent: blocking buckets, overlapped buckets and ZeRO-1
# give the same loss and gradient norm per step and final parameters within float tolerance
# (lib/equivalence.py) on dp = 2 and on 2 × 2 (dp × tp), with small
# buckets so that many are in flight; ZeRO-1 halves each rank's optimizer state at dp = 2.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job sync 12)
for tp in 1 2; do
  for mode in "false false" "true false" "false true"; do
    read -r overlap zero1 <<<"$mode"
    run_mpi $((2 * tp)) "$BIN" run "$job" --out "$WORK/tp$tp-$overlap-$zero1" --set parallel.dp=2 \
      --set parallel.tp=$tp --set parallel.overlap=$overlap --set parallel.zero1=$zero1 \
      --set parallel.bucket_mib=0.0625 >/dev/null
  done
  "$PY" "$(dirname "$0")/lib/equivalence.py" "$WORK/tp$tp-false-false/report.json" \
    "$WORK/tp$tp-true-false/report.json" "$WORK/tp$tp-false-true/report.json"
  "$PY" - "$WORK" "$tp" <<'PY'
import json, sys
work, tp = sys.argv[1], sys.argv[2]
run = lambda o, z: json.load(open(f"{work}/tp{tp}-{o}-{z}/report.json"))["runs"][0]
base, overlapped, zero = run("false", "false"), run("true", "false"), run("false", "true")
assert overlapped["latency"]["layout"]["overlap"] and not base["latency"]["layout"]["overlap"]
assert zero["latency"]["layout"]["zero1"]
for name, r in (("overlap", overlapped), ("zero1", zero)):
    worst = max(abs(a - b) / abs(a) for a, b in zip(base["loss_per_step"], r["loss_per_step"]))
    print(f"tp={tp} {name}: max relative loss difference against blocking buckets {worst:.1e}")
    assert worst < 1e-4, (name, worst)
    assert r["replicas_identical"], name
opt = lambda r: r["ranks"][0]["arena_bytes"]["optimizer"]
assert 2 * opt(zero) <= opt(base) + 16, (opt(zero), opt(base))
PY
done
echo "1 passed, 0 failed"
