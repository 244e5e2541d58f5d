# Faults on a three-host namespace cluster (lib/netns.sh), in the middle of the second run of a
# two-run job: a host's link is cut, or a rank is killed with SIGKILL. Either way the job must end
# within 15 s with a message that names the lost host (and the rank), the first run's results
# must be intact on disk, and nothing may be left running on any host.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/netns.sh"
netns_up 3
job=$(tiny_job faults 6)
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["training"]["batch_size"] = 12
j["runs"] = [{"name": "first"}, {"name": "second", "training": {"steps": 100000}}]
json.dump(j, open(sys.argv[1], "w"))
PY

# start_job NAME: the 6-rank job in the background ($job_pid); returns once the first run is on
# disk and the second is training.
start_job() {
  local out=$WORK/$1 state deadline=$((SECONDS + 60))
  netns_exec 120 "$SRC/scripts/cluster/launch.sh" --hostfile "$HOSTFILE" --nodes 3 --ranks-per-node 2 -- \
    "$BIN" run "$job" --out "$out" --set parallel.dp=6 > "$out.log" 2>&1 &
  job_pid=$!
  while ((SECONDS < deadline)); do
    grep -q '^\[run 2/2 second\] step' "$out.log" 2>/dev/null && return 0
    state=$(grep -s '^State:' "/proc/$job_pid/status") || state=gone
    if [[ $state == gone || $state == *zombie* ]]; then
      cat "$out.log"
      fail "$1: the job ended before its second run"
    fi
    sleep 0.1
  done
  cat "$out.log"
  fail "$1: the second run did not start within 60 s"
}

# await_end NAME: the job ends with an error within 15 s of the fault; sets $log.
await_end() {
  local t0 code=0 elapsed
  t0=$(date +%s%N)
  wait "$job_pid" || code=$?
  elapsed=$((($(date +%s%N) - t0) / 1000000))
  log=$(cat "$WORK/$1.log")
  echo "$1: the job ended with exit code $code ${elapsed} ms after the fault"
  ((code != 0 && code != 124)) || { echo "$log"; fail "$1: exit code $code (124: the time limit ended a hang)"; }
  ((elapsed < 15000)) || { echo "$log"; fail "$1: the job took ${elapsed} ms to end"; }
}

# first_run_intact NAME: the run finished before the fault is on disk, whole.
first_run_intact() {
  local out=$WORK/$1
  [[ $(wc -l < "$out/runs.jsonl") == 1 ]] || fail "$1: runs.jsonl should hold exactly the first run"
  "$PY" -c 'import json, sys; r = json.loads(open(sys.argv[1]).read()); assert r["name"] == "first" and len(r["loss_per_step"]) == 6' \
    "$out/runs.jsonl" || fail "$1: runs.jsonl is damaged"
  json_check "$out/report.json" '[x["name"] for x in r["runs"]] == ["first"] and r["world"]["ranks"] == 6'
  grep -q '^| first |' "$out/report.md" || fail "$1: report.md lacks the first run"
}

# nothing_left NAME: no process of the job remains on any host (the cut host's daemon notices the
# loss on its own, within seconds).
nothing_left() {
  local left t0 p deadline=$((SECONDS + 10))
  t0=$(date +%s%N)
  while ((SECONDS < deadline)); do
    left=$(netns_all_pids)
    if [[ -z $left ]]; then
      echo "$1: nothing left running on any host after $((($(date +%s%N) - t0) / 1000000)) ms more"
      return 0
    fi
    sleep 0.1
  done
  for p in $left; do tr '\0' ' ' < "/proc/$p/cmdline" >&2 && echo >&2; done
  fail "$1: processes left running 10 s after the job ended"
}

# A pid of a rank running on HOST.
rank_pid() {
  local p bin
  bin=$(readlink -f "$BIN")
  for p in $(netns_pids "$1"); do
    if [[ $(readlink "/proc/$p/exe") == "$bin" ]]; then echo "$p"; return; fi
  done
  fail "no rank runs on $1"
}

# 1. node3's cable is pulled: Open MPI's daemon keepalive notices the silent host.
start_job cut
netns_link node3 down
await_end cut
grep -q 'ORTE has lost communication with a remote daemon' <<<"$log" || { echo "$log"; fail "cut: no lost-daemon message"; }
grep -qE 'Remote daemon: .* on node node3$' <<<"$log" || { echo "$log"; fail "cut: the message does not name node3"; }
first_run_intact cut
nothing_left cut
netns_link node3 up  # plugged back in for the next fault

# 2. A rank on node2 is killed.
start_job kill
victim=$(rank_pid node2)
kill -KILL "$victim"
await_end kill
grep -qE "process rank [23] with PID $victim on node node2 exited on signal 9" <<<"$log" ||
  { echo "$log"; fail "kill: the message does not name the rank and host"; }
first_run_intact kill
nothing_left kill
echo "1 passed, 0 failed"
