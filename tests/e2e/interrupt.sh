# SIGTERM (what Slurm's time limit, scancel and preemption send): every rank finishes the step it
# is in, a checkpoint of that step is saved, the report says the run was interrupted, and every
# rank exits 143 within seconds; running it again with --resume into the same --out continues from
# the checkpoint, and the two halves of the loss curve are exactly the uninterrupted run's.
# First under mpirun (the signal sent to the ranks), then under the real Slurm of the test suite:
# `scancel --signal=TERM` to the job's step, then `scontrol requeue`, where the batch script
# resumes because SLURM_RESTART_COUNT says it is a requeued job.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job intr 300)
run_mpi 2 "$BIN" run "$job" --out "$WORK/plain" --set parallel.dp=2 >/dev/null 2>&1 || fail "the plain run failed"

# Started in the background; once training is under way, SIGTERM to both ranks (children of mpirun).
# On a quiet machine the 300 steps take under a second, less than the test takes to react: the
# test-only ELLM_TEST_STALL holds rank 1 for 3 s before step 20 (the math is unchanged), so the
# signal always lands mid-run.
stall=1:20:3
run_mpi 2 -x ELLM_TEST_STALL=$stall "$BIN" run "$job" --out "$WORK/int" --set parallel.dp=2 > "$WORK/int.log" 2>&1 &
job_pid=$!
deadline=$((SECONDS + 60))
until grep -q '^\[run 1/1 intr\] step' "$WORK/int.log" 2>/dev/null; do
  ((SECONDS < deadline)) || { cat "$WORK/int.log"; fail "training did not start"; }
  sleep 0.1
done
# the background job runs run_mpi's `timeout mpirun ...`: the ranks are mpirun's children
mpirun_pid=$(pgrep -P "$(pgrep -P "$job_pid")")
t0=$SECONDS
kill -TERM $(pgrep -P "$mpirun_pid")
code=0
wait "$job_pid" || code=$?
echo "interrupted: exit code $code after $((SECONDS - t0)) s"
# (each rank exits 143; mpirun reports a rank's non-zero exit as its own 1)
((code != 0 && code != 124)) || { cat "$WORK/int.log"; fail "exit code $code"; }
((SECONDS - t0 < 30)) || fail "the interrupted job took $((SECONDS - t0)) s to end"
grep -q "^efficientllm: interrupted by SIGTERM after step [0-9]* of run \"intr\"; checkpoint $WORK/int/checkpoints/intr/step-[0-9]*.safetensors; continue with: efficientllm run $job --resume .* --out $WORK/int$" "$WORK/int.log" ||
  { cat "$WORK/int.log"; fail "no interruption message"; }
json_check "$WORK/int/report.json" 'r["runs"][0]["status"] == "interrupted" and r["runs"][0]["interrupted"]["signal"] == "SIGTERM"'
ck=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["interrupted"]["checkpoint"])' "$WORK/int/report.json")
[[ -f $ck ]] || fail "no checkpoint $ck"
grep -q '^- \*\*interrupted\*\* by SIGTERM' "$WORK/int/report.md" || fail "report.md does not say interrupted"

run_mpi 2 "$BIN" run "$job" --out "$WORK/int" --set parallel.dp=2 --resume "$ck" >/dev/null 2>&1 || fail "the resumed run failed"
# continued_like_plain OUT: report.json holds the finished run only; runs.jsonl both halves, which
# together are the uninterrupted run's loss curve, bit for bit.
continued_like_plain() {
  "$PY" - "$WORK/plain/report.json" "$1" <<'PY' || fail "the resumed run differs from the uninterrupted one ($1)"
import json, sys
plain = json.load(open(sys.argv[1]))["runs"][0]
report = json.load(open(f"{sys.argv[2]}/report.json"))
halves = [json.loads(l) for l in open(f"{sys.argv[2]}/runs.jsonl")]
assert [r["status"] for r in report["runs"]] == ["ok"], [r["status"] for r in report["runs"]]
assert [r["status"] for r in halves] == ["interrupted", "ok"], [r["status"] for r in halves]
k = halves[0]["interrupted"]["step"]
assert report["runs"][0]["checkpoints"]["resumed_from"]["step"] == k and len(halves[0]["loss_per_step"]) == k
print(f"interrupted after step {k} of {len(plain['loss_per_step'])}; resumed to the end")
assert halves[0]["loss_per_step"] + halves[1]["loss_per_step"] == plain["loss_per_step"]
assert halves[1]["param_checksums"] == plain["param_checksums"]
PY
}
continued_like_plain "$WORK/int"

# Under Slurm: one node, 2 tasks by srun --mpi=pmix; the batch script resumes when requeued.
source "$(dirname "$0")/lib/slurm.sh"
slurm_up 1
cat > "$WORK/intr.sbatch" <<SH
#!/bin/bash
#SBATCH --nodes=1 --ntasks=2 --requeue --open-mode=append --output=$WORK/slurm-%j.out
extra=()
if (( \${SLURM_RESTART_COUNT:-0} > 0 )); then extra=(--resume "$WORK/sl/checkpoints/intr"); fi
export ELLM_TEST_STALL=$stall
srun --mpi=pmix "$BIN" run "$job" --out "$WORK/sl" --set parallel.dp=2 "\${extra[@]}"
SH
cd "$WORK"
id=$(slurm_submit "$WORK/intr.sbatch")
deadline=$((SECONDS + 90))
until grep -q '^\[run 1/1 intr\] step' "$WORK/slurm-$id.out" 2>/dev/null; do
  ((SECONDS < deadline)) && scontrol show job "$id" | grep -qE 'JobState=(PENDING|CONFIGURING|RUNNING) ' ||
    { cat "$WORK/slurm-$id.out"; fail "the Slurm job did not start training"; }
  sleep 0.2
done
scancel --signal=TERM "$id"
deadline=$((SECONDS + 60))
while scontrol show job "$id" | grep -qE 'JobState=(RUNNING|COMPLETING) '; do
  ((SECONDS < deadline)) || fail "the Slurm job did not end within 60 s of SIGTERM"
  sleep 0.2
done
grep -q "^efficientllm: interrupted by SIGTERM after step" "$WORK/slurm-$id.out" || { cat "$WORK/slurm-$id.out"; fail "Slurm: not interrupted"; }
scontrol show job "$id" | grep -q ' ExitCode=143:0' || { scontrol show job "$id"; fail "Slurm: the job's exit code is not 143"; }
json_check "$WORK/sl/report.json" 'r["runs"][0]["status"] == "interrupted"'
scontrol requeue "$id"
# Slurm holds a requeued job for ~2 minutes; started in the same second as the first attempt
# ended, slurmd refuses it ("Job credential revoked"): start it 3 s from now.
scontrol update JobId="$id" StartTime=now+3
slurm_wait "$id" 120
continued_like_plain "$WORK/sl"
echo "1 passed, 0 failed"
