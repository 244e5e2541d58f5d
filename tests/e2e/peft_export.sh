# A fine-tuned model from a base checkpoint, merged into a full Hugging Face checkpoint
# (docs/PEFT.md): a Llama-style base is pretrained and saved, adapted by DoRA on every linear
# from it (model.init_from), exported with training.export_hf (the adapters merged into the
# weights); the export, imported by an evaluation-only run (model.from_hf), gives the adapted
# run's validation loss.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job peftexp 8)
llama=(--set model.norm=rmsnorm --set model.positions=rope --set model.activation=swiglu --set model.bias=none)
run_mpi 1 "$BIN" run "$job" --out "$WORK/base" "${llama[@]}" --set checkpoint.save=true \
  --set checkpoint.dir="$WORK/ckpt" >/dev/null
run_mpi 1 "$BIN" run "$job" --out "$WORK/dora" "${llama[@]}" --set model.init_from="$WORK/ckpt/peftexp" \
  --set finetune.method=dora --set finetune.rank=4 --set finetune.target_modules='["all"]' \
  --set training.export_hf="$WORK/export" >/dev/null
cat > "$WORK/eval.json" <<JSON
{"name": "peftexp", "defaults": {"model": {"from_hf": "$WORK/export", "seq_len": 32},
  "training": {"steps": 0, "batch_size": 8, "eval_batches": 2, "warmup_iters": 1},
  "data": {"corpus": ["$WORK/corpus.txt"]}}}
JSON
run_mpi 1 "$BIN" run "$WORK/eval.json" --out "$WORK/eval" >/dev/null
"$PY" - "$WORK/dora/report.json" "$WORK/eval/report.json" <<'PY'
import json, sys
def val(path):
    run = json.load(open(path))["runs"][0]
    v = run["validation"]
    return (v[-1] if isinstance(v, list) else v)["loss"]
adapted, merged = val(sys.argv[1]), val(sys.argv[2])
assert abs(adapted - merged) < 1e-4 * abs(adapted), (adapted, merged)
print(f"adapted val loss {adapted:.6f}, merged export {merged:.6f}")
PY
echo "1 passed, 0 failed"
