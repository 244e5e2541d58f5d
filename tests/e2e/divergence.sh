# Divergence: a run whose loss or gradient norm becomes NaN or infinite (here a learning rate of
# 1e30 after two warm-up steps) stops at that step, marked diverged in report.json, runs.jsonl and
# report.md, and the job goes on with its next run, which finishes normally; on 2 ranks (dp = 2),
# where both ranks must stop at the same step.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job diverge 8)
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["training"].update({"warmup_iters": 0, "warmup_steps": 0, "grad_clip": 0})
j["runs"] = [{"name": "blowup", "training": {"lr": 1e30, "min_lr": 1e30}}, {"name": "fine"}]
json.dump(j, open(sys.argv[1], "w"))
PY
run_mpi 2 "$BIN" run "$job" --out "$WORK/out" --set parallel.dp=2 >/dev/null 2>"$WORK/err" ||
  { cat "$WORK/err"; fail "the job failed"; }
grep -q '^efficientllm: warning: run "blowup" diverged at step [0-9]* (loss .*): it stopped there; the job goes on with its next run$' "$WORK/err" ||
  { cat "$WORK/err"; fail "no divergence warning"; }
"$PY" - "$WORK/out" <<'PY'
import json, math, sys
out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
lines = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
for runs in (report["runs"], lines):
    blowup, fine = runs
    assert blowup["status"] == "diverged" and fine["status"] == "ok", (blowup["status"], fine["status"])
    d = blowup["diverged"]
    print("diverged:", d, "after", len(blowup["loss_per_step"]), "finite steps")
    assert d["step"] == len(blowup["loss_per_step"]) >= 1, d
    assert not (isinstance(d["loss"], float) and math.isfinite(d["loss"]) and
                isinstance(d["grad_norm"], float) and math.isfinite(d["grad_norm"])), d
    assert all(math.isfinite(x) for x in blowup["loss_per_step"])
    assert blowup["validation"] == [] and blowup["quality"]["val_loss_final"] is None
    assert fine["diverged"] is None and len(fine["loss_per_step"]) == 8 and fine["quality"]["val_loss_final"] < 5.6
PY
grep -q '^- \*\*diverged\*\* at step' "$WORK/out/report.md" || fail "report.md does not say diverged"
echo "1 passed, 0 failed"
