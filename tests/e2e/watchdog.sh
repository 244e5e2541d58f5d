# Hangs: with parallel.watchdog_s = 3, a rank that stops before a collective (the test-only
# ELLM_TEST_STALL makes world rank 1 wait 600 s before step 3's loss reduction) is found by its
# peer's watchdog: the job ends within seconds, non-zero, with a message naming the waiting rank,
# its host and the collective it was blocked in; the first run of the job is on disk, whole.
# Without the stall, the same job with the watchdog on finishes normally.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job hang 6)
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["parallel"] = {"dp": 2, "watchdog_s": 3}
# The stall is by step index: the first run (2 steps) never reaches step 3, the second does.
j["runs"] = [{"name": "first", "training": {"steps": 2, "warmup_steps": 0}}, {"name": "second"}]
json.dump(j, open(sys.argv[1], "w"))
PY
run_mpi 2 "$BIN" run "$job" --out "$WORK/ok" >/dev/null 2>&1 || fail "the job without a stall failed"
t0=$SECONDS
code=0
run_mpi 2 -x ELLM_TEST_STALL=1:3:600 "$BIN" run "$job" --out "$WORK/hang" >/dev/null 2>"$WORK/err" || code=$?
elapsed=$((SECONDS - t0))
echo "the stalled job ended with exit code $code after ${elapsed} s"
((code != 0 && code != 124)) || { cat "$WORK/err"; fail "exit code $code"; }
((elapsed < 60)) || { cat "$WORK/err"; fail "took ${elapsed} s"; }
host=$(hostname)
grep -q "^efficientllm: watchdog: rank 0 on host $host has waited [0-9]* s in MPI_Allreduce (a communicator of 2 ranks) with no progress (parallel.watchdog_s = 3): a peer rank is stalled or its link is down; ending the job$" "$WORK/err" ||
  { cat "$WORK/err"; fail "no watchdog message naming rank 0, the host and MPI_Allreduce"; }
json_check "$WORK/hang/report.json" '[x["name"] for x in r["runs"]] == ["first"]'
echo "1 passed, 0 failed"
