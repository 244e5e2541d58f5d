# Evaluation-only runs (training.steps = 0): the validation loss of a checkpoint's weights
# (model.init_from) equals the loss the training run that saved it measured on the same batches,
# on 1 rank and on dp = 2; a fresh initialisation evaluates near ln 256; the report is complete
# (schema-checked on exit) with the evaluation batches as its timed window and no training curves.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job evalonly 10)
run_mpi 1 "$BIN" run "$job" --out "$WORK/train" --set checkpoint.save=true >/dev/null
ck="$WORK/train/checkpoints/evalonly/step-000010.safetensors"
"$BIN" validate "$job" --set training.steps=0 --set model.init_from="$ck" >/dev/null
evaluate() {  # NAME NP OPTIONS...
  local name=$1 np=$2; shift 2
  run_mpi "$np" "$BIN" run "$job" --out "$WORK/$name" --set training.steps=0 --set training.eval_batches=4 \
    --set training.warmup_iters=1 "$@" >/dev/null
}
evaluate e1 1 --set model.init_from="$ck"
evaluate e2 2 --set model.init_from="$ck" --set parallel.dp=2
evaluate fresh 1
grep -q "evaluation only" "$WORK/e1/report.md" || fail "report.md does not say evaluation only"
"$PY" - "$WORK" <<'PY'
import json, math, sys
work = sys.argv[1]
run = lambda name: json.load(open(f"{work}/{name}/report.json"))["runs"][0]
trained = run("train")
for name in ("e1", "e2", "fresh"):
    r = run(name)
    assert r["mode"] == "evaluation" and trained["mode"] == "training", name
    assert r["loss_per_step"] == [] and r["lr_per_step"] == [] and r["grad_norm_per_step"] == [], name
    assert r["quality"]["train_loss_final"] is None, name
    assert [v["step"] for v in r["validation"]] == [0], r["validation"]
    assert len(r["samples_per_step"]) == 4 and r["latency"]["measured_iters"] == 3, r["latency"]
    assert r["latency"]["unit"] == "s/evaluation batch"
    assert r["throughput"]["tokens_per_s"] > 0 and r["compute"]["model_flops_per_s"] > 0
    assert r["checkpoints"]["saved"] == [], "an evaluation saved a checkpoint"
e1, e2, fresh = run("e1")["quality"]["val_loss_final"], run("e2")["quality"]["val_loss_final"], run("fresh")["quality"]["val_loss_final"]
print(f"eval-only val loss: 1 rank {e1:.6f}, dp 2 {e2:.6f}, fresh init {fresh:.4f} (ln 256 = {math.log(256):.4f})")
assert abs(e1 - e2) / e1 < 1e-5, (e1, e2)
assert abs(fresh - math.log(256)) < 0.3, fresh
assert e1 < fresh - 0.3, "the checkpoint's weights evaluate no better than a fresh model"
PY
# The training run's own final evaluation used eval_batches = 2: evaluating its checkpoint over
# the same 2 batches gives the same loss.
run_mpi 1 "$BIN" run "$job" --out "$WORK/e_same" --set training.steps=0 --set training.warmup_iters=0 \
  --set model.init_from="$ck" >/dev/null
"$PY" - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
run = lambda name: json.load(open(f"{work}/{name}/report.json"))["runs"][0]
a, b = run("train")["quality"]["val_loss_final"], run("e_same")["quality"]["val_loss_final"]
assert abs(a - b) <= 1e-6 * abs(a), (a, b)
PY
expect_error 2 "efficientllm: $job: /defaults/training/warmup_iters: warmup_iters (2) must be < eval_batches (2) in an evaluation-only run (steps = 0) so that at least one batch is measured (from --set)" \
  "$BIN" validate "$job" --set training.steps=0 --set training.warmup_iters=2
echo "1 passed, 0 failed"
