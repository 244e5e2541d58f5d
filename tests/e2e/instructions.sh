# Instruction data (docs/DATA.md): prompt/response and chat JSONL packed into rows with the loss on
# response tokens only. The masked loss is averaged over the global batch's counted targets, so
# 1 rank, 2 data-parallel ranks and 2 tensor-parallel ranks are equivalent (lib/equivalence.py);
# the loss falls; the report counts samples and loss tokens per step and gives ST. Bad JSONL
# lines end the job with one message naming the file and line, exit 2, on 2 ranks.
source "$(dirname "$0")/lib/common.sh"
job="$WORK/inst.json"
cat > "$job" <<JSON
{"name": "inst", "defaults": {
  "model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "seq_len": 256},
  "training": {"steps": 40, "batch_size": 8, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 3,
               "eval_every": 0, "eval_batches": 2, "warmup_iters": 1, "log_every": 10},
  "data": {"format": "instructions", "corpus": "$SRC/jobs/data/instructions.jsonl", "val_fraction": 0.1}}}
JSON
run_mpi 1 "$BIN" run "$job" --out "$WORK/one" >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/dp2" --set parallel.dp=2 >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/tp2" --set parallel.tp=2 >/dev/null
"$PY" "$(dirname "$0")/lib/equivalence.py" "$WORK/one/report.json" "$WORK/dp2/report.json" "$WORK/tp2/report.json"
"$PY" - "$WORK/one/report.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
loss, samples, counted = run["loss_per_step"], run["samples_per_step"], run["loss_tokens_per_step"]
print(f"loss {loss[0]:.3f} -> {loss[-1]:.3f}; samples/step {samples[:4]}...; loss tokens/step {counted[:4]}...")
assert sum(loss[-5:]) / 5 < loss[0] - 1.5, "the loss did not fall"
assert all(s > 8 for s in samples), "8 rows of 256 tokens hold about 2 samples each"
assert all(0 < c < 8 * 256 for c in counted), "prompt targets are not counted"
t = run["throughput"]
assert t["samples_per_s"] > 0 and abs(t["st_samples_per_param_per_s"] * run["model"]["parameters"] - t["samples_per_s"]) < 1e-6 * t["samples_per_s"]
PY

printf '{"prompt": "a", "response": "b"}\n\n{"prompt": "x", "response": ""}\n' > "$WORK/bad.jsonl"
expect_error 2 "efficientllm: $job: /data/corpus/0: instruction file \"$WORK/bad.jsonl\": line 3: \"response\" is empty: a sample needs response tokens to learn from" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/bad" --set parallel.dp=2 --set "data.corpus=\"$WORK/bad.jsonl\""
printf '{"prompt": "a", "response": "b"}\n{"prompt": "a" "response": "b"}\n' > "$WORK/bad.jsonl"
expect_error 2 "efficientllm: $job: /data/corpus/0: instruction file \"$WORK/bad.jsonl\": line 2: not valid JSON (syntax error while parsing object - unexpected string literal; expected '}')" \
  "$BIN" validate "$job" --set "data.corpus=\"$WORK/bad.jsonl\""
[[ ! -e $WORK/bad ]] || fail "a job with bad data wrote $WORK/bad"
echo "1 passed, 0 failed"
