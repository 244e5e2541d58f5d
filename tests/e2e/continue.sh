# `run --continue`: a job taken up in the directory of an earlier invocation keeps the runs that
# finished there and runs only the others. The first invocation runs seeds 1 and 2 of a grid; the
# second, the same job grown to seeds 1-3, runs seed 3 alone and reports all three, the first two
# verbatim. A directory of another job, a run whose configuration changed, --continue without
# --out, and an existing directory without --continue are refused with their messages.
source "$(dirname "$0")/lib/common.sh"
text=$(corpus)
grid_job() {  # grid_job FILE NAME SEEDS
  cat > "$1" <<JSON
{
  "name": "$2",
  "defaults": {
    "model": {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 64, "seq_len": 16},
    "training": {"steps": 4, "batch_size": 4, "warmup_steps": 1, "eval_every": 0, "eval_batches": 1,
                 "warmup_iters": 1, "log_every": 2},
    "data": {"corpus": ["$text"]}
  },
  "grid": {"training.seed": $3}
}
JSON
}
grid_job "$WORK/two.json" study "[1, 2]"
grid_job "$WORK/three.json" study "[1, 2, 3]"
grid_job "$WORK/other.json" another "[1, 2, 3]"
out="$WORK/results"
run_mpi 1 "$BIN" run "$WORK/two.json" --out "$out" > /dev/null 2>&1
cp "$out/report.json" "$WORK/first.json"
run_mpi 1 "$BIN" run "$WORK/three.json" --out "$out" --continue > /dev/null 2> "$WORK/log"
[[ $(grep -c "finished earlier in $out: kept, not run again" "$WORK/log") == 2 ]] || { cat "$WORK/log"; fail "two runs should be kept"; }
grep -q "^\[run 3/3 .*seed=3\] done" "$WORK/log" || { cat "$WORK/log"; fail "the third run did not run"; }
[[ $(wc -l < "$out/runs.jsonl") == 3 ]] || fail "runs.jsonl should hold three runs"
"$PY" - "$WORK/first.json" "$out/report.json" <<'PY'
import json, sys
first, final = (json.load(open(p)) for p in sys.argv[1:])
names = [r["name"] for r in final["runs"]]
assert names == ["seed=1", "seed=2", "seed=3"], names
assert final["runs"][:2] == first["runs"], "the kept runs must be reported verbatim"
assert final["runs"][2]["status"] == "ok" and final["runs"][2]["index"] == 2, final["runs"][2]["status"]
PY
expect_error 2 "efficientllm: $out: holds the results of job \"study\", not \"another\"; --continue takes up a directory of the same job" \
  run_mpi 1 "$BIN" run "$WORK/other.json" --out "$out" --continue
expect_error 2 "efficientllm: $WORK/three.json: /training/steps: run \"seed=1\" finished in $out with 4 here and would now run with 5; --continue takes up the same configuration (or choose another --out)" \
  run_mpi 1 "$BIN" run "$WORK/three.json" --out "$out" --continue --set training.steps=5
expect_error 2 "efficientllm run: --continue needs --out DIR, the directory to take up" \
  run_mpi 1 "$BIN" run "$WORK/three.json" --continue
expect_error 2 "efficientllm: $out: already holds the results of a job (runs.jsonl); choose another --out, or --continue it" \
  run_mpi 1 "$BIN" run "$WORK/three.json" --out "$out"
echo "e2e.continue: OK"
