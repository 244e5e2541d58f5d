# The report of a two-run job: report.json (schema, provenance, system, per-run metrics, per-rank
# rows), runs.jsonl (one line per finished run) and report.md.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job report 6)
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["parallel"] = {"dp": 2}
j["runs"] = [{"name": "gelu"}, {"name": "swiglu-rope", "model": {"activation": "swiglu", "positions": "rope", "norm": "rmsnorm"}}]
json.dump(j, open(sys.argv[1], "w"))
PY
run_mpi 2 "$BIN" run "$job" --out "$WORK/out" > "$WORK/stdout"
R="$WORK/out/report.json"
json_check "$R" 'r["schema_version"] == 3 and len(r["runs"]) == 2'
json_check "$R" 'all(k in r["provenance"] for k in ["git_commit","compiler","compiler_flags","mpi_library","openblas","hwloc","command_line","date_utc"])'
json_check "$R" 'r["system"]["cores"] >= 1 and r["system"]["memory_bytes"] > 0 and r["world"]["ranks"] == 2'
json_check "$R" '[x["name"] for x in r["runs"]] == ["gelu", "swiglu-rope"]'
json_check "$R" 'all(len(x["ranks"]) == 2 and x["replicas_identical"] for x in r["runs"])'
json_check "$R" 'all(x["latency"]["warmup_iters_excluded"] == 1 and x["latency"]["measured_iters"] == 5 for x in r["runs"])'
json_check "$R" 'all(x["throughput"]["tokens_per_s"] > 0 and 0 < x["compute"]["gemm_relative_efficiency"] <= 1 for x in r["runs"])'
json_check "$R" 'all(len(x["samples"]["step_seconds_per_rank"]) == 2 for x in r["runs"])'
# each rank's phases add up to its mean step; GEMM and (dp = 2) communication are among them
json_check "$R" 'all(abs(sum(k["phase_seconds"].values()) - k["step_seconds"]["mean"]) <= 0.01 * k["step_seconds"]["mean"] for x in r["runs"] for k in x["ranks"])'
json_check "$R" 'all(k["phase_seconds"]["gemm"] > 0 and k["phase_seconds"]["communication"] > 0 for x in r["runs"] for k in x["ranks"])'
json_check "$R" 'r["runs"][1]["config"]["model"]["activation"] == "swiglu"'
# MHA, 4 heads of 16, 2 layers: 2 · 64 keys and values · 4 bytes · 2 layers
json_check "$R" 'all(x["model"]["kv_cache_bytes_per_token"] == 1024 for x in r["runs"])'
[[ $(wc -l < "$WORK/out/runs.jsonl") == 2 ]] || fail "runs.jsonl should have 2 lines"
grep -q "| swiglu-rope |" "$WORK/out/report.md" || fail "report.md lacks the run row"
grep -q "| swiglu-rope |" "$WORK/stdout" || fail "the summary table was not printed"
echo "1 passed, 0 failed"
