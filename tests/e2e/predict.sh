# `efficientllm predict` end to end: a measured sweep (bench_collectives on 2 ranks) fitted into a
# network file, a one-rank run of a job, and the predicted curve to 10,000 ranks (text and --json:
# every size, step ≥ compute, efficiency in (0, 1]); strong scaling keeps the layouts whose dp
# divides the batch; bad input (a 2-rank report, another model's report, a network file without
# its interconnect) exits 2 with one message naming the file and field.
source "$(dirname "$0")/lib/common.sh"
bench=$(dirname "$BIN")/bench/bench_collectives
[[ -x $bench ]] || fail "$bench not built (target bench_collectives)"
run_mpi 2 "$bench" --out "$WORK/sweep.json" --max-kib 256 >/dev/null
"$BIN" predict fit "$WORK/sweep.json" --link shared_memory --out "$WORK/net.json" >/dev/null
json_check "$WORK/net.json" 'sorted(r["links"]["shared_memory"]["collectives"]) == ["all_gather", "all_reduce", "all_to_all", "reduce_scatter"]'
cp "$WORK/net.json" "$WORK/half.json"
"$BIN" predict fit "$WORK/sweep.json" --link interconnect --out "$WORK/net.json" >/dev/null  # keeps shared_memory
json_check "$WORK/net.json" 'set(r["links"]) == {"shared_memory", "interconnect"}'

job=$(tiny_job predict 3)
run_mpi 1 "$BIN" run "$job" --out "$WORK/one" --set parallel.dp=1 >/dev/null
"$BIN" predict "$job" --report "$WORK/one/report.json" --network "$WORK/net.json" --json > "$WORK/curve.json"
json_check "$WORK/curve.json" '[p["ranks"] for p in r["curve"]] == [2 ** i for i in range(14)] + [10000]'
json_check "$WORK/curve.json" 'all(p["step_s"] >= p["compute_s"] > 0 and 0 < p["efficiency"] <= 1 for p in r["curve"])'
json_check "$WORK/curve.json" 'r["curve"][0]["efficiency"] == 1 and r["curve"][-1]["dp_s"] > 0 and len(r["assumptions"]) >= 4'
"$BIN" predict "$job" --report "$WORK/one/report.json" --network "$WORK/net.json" --tp 2 --global-batch 8 --json > "$WORK/strong.json"
json_check "$WORK/strong.json" '[(p["dp"], p["tp"], p["rows_per_replica"]) for p in r["curve"]] == [(1, 2, 8), (2, 2, 4), (4, 2, 2), (8, 2, 1)]'
"$BIN" predict "$job" --report "$WORK/one/report.json" --network "$WORK/net.json" > "$WORK/curve.txt"
grep -q '^  10000 ' "$WORK/curve.txt" && grep -q '^# assumptions' "$WORK/curve.txt" || { cat "$WORK/curve.txt"; fail "text table"; }

run_mpi 2 "$BIN" run "$job" --out "$WORK/two" --set parallel.dp=2 >/dev/null
expect_error 2 "efficientllm predict: $WORK/two/report.json: /runs/0/ranks: the measured run must have one rank (run it without mpirun)" \
  "$BIN" predict "$job" --report "$WORK/two/report.json" --network "$WORK/net.json"
expect_error 2 "efficientllm predict: $WORK/half.json: /links/interconnect: missing (both link classes are required)" \
  "$BIN" predict "$job" --report "$WORK/one/report.json" --network "$WORK/half.json"
expect_error 2 "efficientllm predict: $WORK/one/report.json: /runs/0/config/model: not the model of $SRC/jobs/reference.json's run 0 (measure the job you predict)" \
  "$BIN" predict "$SRC/jobs/reference.json" --report "$WORK/one/report.json" --network "$WORK/net.json"
echo "1 passed, 0 failed"
