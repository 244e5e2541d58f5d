# Disk faults, on small tmpfs file systems the test mounts (root): (1) an output directory on a
# read-only file system, and (2) one too small for the checkpoints the job will save, are refused
# before any run with exit code 2 and one message, leaving nothing behind; (3) a disk that fills up
# in the middle of a job (the test fills it once the first run is on disk) ends the job with a
# clear message, and the first run stays whole in runs.jsonl and report.json, with no temporary
# file left; (4) so does a disk that fills during a checkpoint save, which leaves no partial
# checkpoint behind.
source "$(dirname "$0")/lib/common.sh"
mounts=()
cleanup_mounts() { for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap 'cleanup_mounts; validate_reports_and_clean' EXIT
small() {  # NAME SIZE [OPTIONS]: a tmpfs of SIZE at $WORK/NAME
  mkdir -p "$WORK/$1"
  mount -t tmpfs -o "size=$2${3:+,$3}" tmpfs "$WORK/$1" || fail "cannot mount a tmpfs (root needed)"
  mounts+=("$WORK/$1")
}
job=$(tiny_job disk 6)
small ro 1m ro
expect_error 2 "efficientllm: $WORK/ro/out: cannot create output directory: Read-only file system" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/ro/out"
small tiny 2m
expect_error 2 "efficientllm: $WORK/tiny/out: 2.0 MiB free on its file system, and the job will write about 17.8 MiB there (reports and checkpoints: checkpoint.save, checkpoint.every); free some space or choose another --out or checkpoint.dir" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/tiny/out" --set checkpoint.save=true --set checkpoint.every=1
[[ ! -e $WORK/tiny/out ]] || fail "a refused job left $WORK/tiny/out"

# (3) A two-run job on an 8 MiB disk; once the first run is on disk, the disk is filled.
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["runs"] = [{"name": "first"}, {"name": "second", "training": {"steps": 400}}]
json.dump(j, open(sys.argv[1], "w"))
PY
small full 10m
run_mpi 2 "$BIN" run "$job" --out "$WORK/full/out" --set parallel.dp=2 >/dev/null 2>"$WORK/err" &
pid=$!
deadline=$((SECONDS + 60))
until [[ -s $WORK/full/out/runs.jsonl ]]; do
  ((SECONDS < deadline)) || fail "the first run did not finish"
  sleep 0.1
done
dd if=/dev/zero of="$WORK/full/filler" bs=64k status=none 2>/dev/null || true  # until the disk is full
code=0
wait "$pid" || code=$?
echo "disk full: exit code $code"
((code != 0 && code != 124)) || { cat "$WORK/err"; fail "exit code $code"; }
grep -q "^efficientllm: error: $WORK/full/out/runs.jsonl: cannot append run \"second\" (the earlier runs are kept): No space left on device$" "$WORK/err" ||
  { cat "$WORK/err"; fail "no clear disk-full message"; }
rm "$WORK/full/filler"
"$PY" - "$WORK/full/out" <<'PY' || fail "the first run was damaged"
import json, os, sys
out = sys.argv[1]
lines = open(f"{out}/runs.jsonl").read().splitlines()
assert len(lines) == 1 and json.loads(lines[0])["name"] == "first", lines
assert [r["name"] for r in json.load(open(f"{out}/report.json"))["runs"]] == ["first"]
assert not [f for f in os.listdir(out) if f.endswith(".tmp")], os.listdir(out)
PY

# (4) The disk fills during a checkpoint save: a two-run job whose second run saves every 100 of
# 400 steps; once its step-100 checkpoint is on disk, the disk is filled, so the save at step 200
# hits ENOSPC. The job ends with a clear message; no partial checkpoint or temporary file is left
# (a --resume finds the whole step-100 checkpoint and continues from it); the first run stays whole.
"$PY" - "$job" "$WORK/second.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
second = {"name": "second", "training": {"steps": 400}, "checkpoint": {"save": True, "every": 100}}
j["runs"] = [{"name": "first"}, second]
json.dump(j, open(sys.argv[1], "w"))
j["runs"] = [second]  # the same run alone, for --resume (which continues one run)
json.dump(j, open(sys.argv[2], "w"))
PY
small ckpt 24m
out="$WORK/ckpt/out" ckdir="$WORK/ckpt/out/checkpoints/second"
run_mpi 2 "$BIN" run "$job" --out "$out" --set parallel.dp=2 >/dev/null 2>"$WORK/err" &
pid=$!
deadline=$((SECONDS + 120))
until [[ -e $ckdir/step-000100.safetensors ]]; do  # renamed into place: complete
  ((SECONDS < deadline)) || { kill "$pid" 2>/dev/null; fail "the step-100 checkpoint did not appear"; }
  sleep 0.05
done
dd if=/dev/zero of="$WORK/ckpt/filler" bs=64k status=none 2>/dev/null || true
code=0
wait "$pid" || code=$?
echo "disk full during a checkpoint save: exit code $code"
((code != 0 && code != 124)) || { cat "$WORK/err"; fail "exit code $code"; }
grep -q "^efficientllm: error: cannot save the checkpoint at step 200: .*No space left on device" "$WORK/err" ||
  { cat "$WORK/err"; fail "no clear message for the failed checkpoint save"; }
grep -m1 "cannot save the checkpoint" "$WORK/err"
rm "$WORK/ckpt/filler"
[[ $(cd "$ckdir" && echo *) == "step-000100.safetensors" ]] || fail "left in $ckdir: $(ls -a "$ckdir")"
"$PY" - "$out" <<'PY' || fail "the first run was damaged"
import json, os, sys
out = sys.argv[1]
lines = open(f"{out}/runs.jsonl").read().splitlines()
assert len(lines) == 1 and json.loads(lines[0])["name"] == "first", lines
assert [r["name"] for r in json.load(open(f"{out}/report.json"))["runs"]] == ["first"]
assert not [f for f in os.listdir(out) if ".tmp" in f], os.listdir(out)
PY
run_mpi 2 "$BIN" run "$WORK/second.json" --resume "$ckdir" --out "$WORK/resumed" --set parallel.dp=2 \
  >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; fail "resuming from the checkpoint directory failed"; }
grep -q "^efficientllm: resuming from $ckdir/step-000100.safetensors at step 100$" "$WORK/err" ||
  { cat "$WORK/err"; fail "did not resume from the whole step-100 checkpoint"; }
json_check "$WORK/resumed/report.json" 'r["runs"][0]["status"] == "ok" and len(r["runs"][0]["loss_per_step"]) == 300'
echo "1 passed, 0 failed"
