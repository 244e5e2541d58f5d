# A real Slurm with two nodes on this machine (munged, slurmctld, two slurmd, each "node" with
# its own host name): the sbatch scripts of scripts/slurm/ run a job on 2 nodes × 2 ranks with
# srun --mpi=pmix and with mpirun inside the allocation, and a weak-scaling study over 1 and 2
# nodes ends in its table and plot.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/slurm.sh"
slurm_up 2
job=$(tiny_job slurm 6)
export ELLM_HOME=$SRC ELLM_BIN=$BIN  # the scripts as a user runs them, on the binary under test
cd "$WORK"  # sbatch writes its logs (%x-%j.out) and the default results/ here

# The #SBATCH defaults (2 nodes × 2 tasks) and the default output directory.
srun_id=$(slurm_submit "$SRC/scripts/slurm/experiment.sbatch" "$job")
mpirun_id=$(ELLM_LAUNCHER=mpirun slurm_submit "$SRC/scripts/slurm/experiment.sbatch" "$job" --out "$WORK/mpirun")
scaling_id=$(slurm_submit --time=5 "$SRC/scripts/slurm/scaling.sbatch" --mode weak --batch 2 "$job")
slurm_wait "$srun_id" 120
slurm_wait "$mpirun_id" 120
slurm_wait "$scaling_id" 180

grep -q "launch.sh: srun --mpi=pmix" "efficientllm-$srun_id.out" || fail "the job was not started by srun --mpi=pmix"
grep -q "launch.sh: mpirun" "efficientllm-$mpirun_id.out" || fail "ELLM_LAUNCHER=mpirun did not start mpirun"
for R in "results/efficientllm-$srun_id/report.json" mpirun/report.json; do
  json_check "$R" 'r["world"]["ranks"] == 4 and r["world"]["rank_hosts"] == ["n1", "n1", "n2", "n2"]'
  json_check "$R" 'r["world"]["hosts"] == ["n1", "n2"] and r["runs"][0]["replicas_identical"]'
  json_check "$R" 'r["provenance"]["environment"]["SLURM_JOB_NODELIST"] == "n[1-2]"'
done
# What srun made of the allocation is in the report: 2 tasks on each node, 1 CPU each.
json_check "results/efficientllm-$srun_id/report.json" \
  'r["provenance"]["environment"]["SLURM_STEP_TASKS_PER_NODE"] == "2(x2)" and r["provenance"]["environment"]["SLURM_CPUS_PER_TASK"] == "1"'
# The same job, dp and global batch under either launcher: the same losses.
"$PY" - "results/efficientllm-$srun_id/report.json" mpirun/report.json <<'PY' || fail "srun and mpirun runs differ"
import json, sys
a, b = (json.load(open(p))["runs"][0]["loss_per_step"] for p in sys.argv[1:])
assert len(a) == 6 and max(abs(x - y) / x for x, y in zip(a, b)) < 1e-5, (a, b)
PY

# Weak scaling over 1 and 2 nodes with 2 ranks each and 2 sequences per rank.
S="results/efficientllm-scaling-$scaling_id"
json_check "$S/ranks-2/report.json" 'r["world"]["hosts"] == ["n1"] and r["runs"][0]["config"]["training"]["batch_size"] == 4'
json_check "$S/ranks-4/report.json" 'r["world"]["hosts"] == ["n1", "n2"] and r["runs"][0]["config"]["training"]["batch_size"] == 8'
[[ $(grep -c '^| slurm |' "$S/scaling.md") == 2 ]] || { cat "$S/scaling.md" >&2; fail "scaling.md should have 2 rows"; }
grep -q '^| slurm | 4 | 2 | 8 |' "$S/scaling.md" || fail "scaling.md lacks the 4-rank, 2-host row"
[[ $(head -c 8 "$S/scaling.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "scaling.png is not a PNG"
echo "1 passed, 0 failed"
