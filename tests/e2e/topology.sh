# Rank placement through the real binary: `efficientllm topo` alone and under mpirun (compact
# binds each rank and all its threads to its own core; inherit keeps mpirun's binding;
# oversubscription is announced), bad --policy input, and a training run's placement in its report.
source "$(dirname "$0")/lib/common.sh"

"$BIN" topo --json > "$WORK/one.json"
json_check "$WORK/one.json" 'len(r["nodes"]) == 1 and len(r["ranks"]) == 1 and r["policy"] == "inherit"'
json_check "$WORK/one.json" 'r["nodes"][0]["topology"]["cores"] >= 1 and r["oversubscribed_hosts"] == []'

if (( $(nproc) >= 2 )); then
  run_mpi 2 "$BIN" topo --policy compact --json > "$WORK/compact.json"
  json_check "$WORK/compact.json" '[x["placement"]["binding"] for x in r["ranks"]] == ["set", "set"]'
  json_check "$WORK/compact.json" 'r["ranks"][0]["placement"]["pus"] != r["ranks"][1]["placement"]["pus"]'
  # Every thread of every rank (OpenBLAS workers included) sits inside the rank's CPU set.
  json_check "$WORK/compact.json" 'all(x["placement"]["threads_bound"]["inside"] == x["placement"]["threads_bound"]["total"] for x in r["ranks"])'
  timeout 300 mpirun -np 2 --bind-to core "$BIN" topo --json > "$WORK/inherit.json"
  json_check "$WORK/inherit.json" '[x["placement"]["binding"] for x in r["ranks"]] == ["inherited", "inherited"]'
  json_check "$WORK/inherit.json" 'all(x["placement"]["blas_threads"] == 1 for x in r["ranks"])'
fi

pus=$(nproc)
run_mpi $((pus + 2)) "$BIN" topo --policy scatter > "$WORK/over.txt"
grep -q "is oversubscribed (more ranks than hardware threads)" "$WORK/over.txt" || fail "no oversubscription warning"
grep -q "| $((pus + 1)) |" "$WORK/over.txt" || fail "the placement table lacks rank $((pus + 1))"

expect_error 2 'efficientllm topo: --policy: must be one of "inherit", "compact", "scatter"; got "spread"' \
  "$BIN" topo --policy spread

# A run places its ranks as the job says and reports it; an oversubscribed run says so.
job=$(tiny_job place 4)
run_mpi 2 "$BIN" run "$job" --out "$WORK/run2" --set parallel.dp=2 --set topology.policy=compact >/dev/null
json_check "$WORK/run2/report.json" 'all(x["placement"]["policy"] == "compact" for x in r["runs"][0]["ranks"])'
json_check "$WORK/run2/report.json" 'r["runs"][0]["nodes"][0]["cores_in_use"] == min(2, r["runs"][0]["nodes"][0]["cores"])'
grep -q "^| 1 | .* | compact | set |" "$WORK/run2/report.md" || fail "report.md lacks the placement table"
ranks=$((pus * 2))
run_mpi $ranks "$BIN" run "$job" --out "$WORK/over" --set parallel.dp=$ranks --set training.batch_size=$ranks \
  2> "$WORK/over.err" >/dev/null
grep -q "runs $ranks ranks on $pus hardware threads (oversubscribed)" "$WORK/over.err" || fail "no warning on the console"
json_check "$WORK/over/report.json" 'r["runs"][0]["oversubscribed"] is True'
json_check "$WORK/over/report.json" 'abs(sum(x["core_share"] for x in r["runs"][0]["ranks"]) - r["runs"][0]["nodes"][0]["cores"]) < 1e-9'
echo "1 passed, 0 failed"
