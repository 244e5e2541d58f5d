# Adapters saved alone in PEFT's layout and loaded back through the binary (docs/PEFT.md): a
# Llama-style base is pretrained and saved; LoRA on every linear is trained from it on 1×2
# (dp × tp) ranks and saved with finetune.save_adapter (whole tensors); evaluation-only runs load
# the adapter onto the base (finetune.adapter_from) on 1×1 and on 1×2 and give the fine-tuned
# run's validation loss. An adapter that does not match (a tensor taken out, another r in its
# config) ends the run before it starts with one message naming the file and what was expected.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job peftad 8)
llama=(--set model.norm=rmsnorm --set model.positions=rope --set model.activation=swiglu --set model.bias=none)
lora=(--set model.init_from="$WORK/ckpt/peftad" --set finetune.method=lora --set finetune.rank=4
      --set finetune.target_modules='["all"]')
run_mpi 1 "$BIN" run "$job" --out "$WORK/base" "${llama[@]}" --set checkpoint.save=true \
  --set checkpoint.dir="$WORK/ckpt" >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/lora" "${llama[@]}" "${lora[@]}" --set parallel.tp=2 \
  --set training.lr=3e-2 --set finetune.save_adapter="$WORK/adapter" >/dev/null
[[ -f $WORK/adapter/adapter_model.safetensors && -f $WORK/adapter/adapter_config.json ]] ||
  fail "no adapter written"
json_check "$WORK/adapter/adapter_config.json" \
  'r["peft_type"] == "LORA" and r["r"] == 4 and r["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]'
evaluate=(--set training.steps=0 --set finetune.adapter_from="$WORK/adapter")
run_mpi 1 "$BIN" run "$job" --out "$WORK/eval1" "${llama[@]}" "${lora[@]}" "${evaluate[@]}" >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/eval2" "${llama[@]}" "${lora[@]}" "${evaluate[@]}" \
  --set parallel.tp=2 >/dev/null
run_mpi 1 "$BIN" run "$job" --out "$WORK/base_eval" "${llama[@]}" "${lora[@]}" --set training.steps=0 >/dev/null
"$PY" - "$WORK"/{lora,eval1,eval2,base_eval}/report.json <<'PY'
import json, sys
def val(path):
    v = json.load(open(path))["runs"][0]["validation"]
    return (v[-1] if isinstance(v, list) else v)["loss"]
trained, eval1, eval2, base = map(val, sys.argv[1:])
for got in (eval1, eval2):
    assert abs(got - trained) < 1e-5 * abs(trained), (trained, eval1, eval2)
assert abs(base - trained) > 1e-3, f"the adapter changed nothing: {base} vs {trained}"
print(f"fine-tuned val loss {trained:.6f}; adapter loaded on 1x1 {eval1:.6f}, on 1x2 {eval2:.6f}; base {base:.6f}")
PY
json_check "$WORK/eval1/report.json" 'r["runs"][0]["checkpoints"]["adapter_from"].endswith("/adapter")'

# A tensor taken out of the file (rewritten without it, as another program might write it).
mkdir -p "$WORK/bad"
cp "$WORK/adapter/adapter_config.json" "$WORK/bad/"
"$PY" - "$WORK/adapter/adapter_model.safetensors" "$WORK/bad/adapter_model.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
header.pop("__metadata__", None)
header.pop("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")
out, parts, at = {}, [], 0
for name, t in header.items():
    b, e = t["data_offsets"]
    parts.append(data[b:e])
    out[name] = dict(t, data_offsets=[at, at + e - b])
    at += e - b
text = json.dumps(out).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + b"".join(parts))
PY
file="$WORK/bad/adapter_model.safetensors"
expect_error 2 "efficientllm: $file: tensor 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight': missing; the job's model (finetune.method \"lora\", r = 4) adapts this module: shape [64, 4]" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/bad_run" "${llama[@]}" "${lora[@]}" --set parallel.tp=2 \
  --set training.steps=0 --set finetune.adapter_from="$WORK/bad"
expect_error 2 "efficientllm: $WORK/adapter/adapter_config.json: /r: 4, and the job's finetune.rank is 8: they must agree" \
  "$BIN" validate "$job" "${llama[@]}" "${lora[@]}" --set finetune.rank=8 --set finetune.adapter_from="$WORK/adapter"
echo "1 passed, 0 failed"
