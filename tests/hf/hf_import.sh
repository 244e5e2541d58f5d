# Hugging Face import and export (docs/HF_IMPORT.md), against PyTorch. make_tiny_models.py builds
# tiny random Llama, Qwen2 and GPT-NeoX checkpoints in Hugging Face's layout with reference
# log-probabilities, losses and gradient norms from plain PyTorch implementations. For each:
# our forward and three SGD steps on the imported model match (hf_check, compare.py reference);
# import → export gives the same bytes; a job that starts from it trains, evaluates and exports
# on tp = 1 and tp = 2 with equivalent curves (AdamW at a small lr: a key bias has a zero gradient
# but for rounding, which AdamW turns into lr-sized steps that differ per layout, as
# lib/equivalence.py explains); its export imports and exports again bit-exactly. Bad checkpoints
# are refused with one message and exit code 2, and nothing is written.
#   bash tests/hf/hf_import.sh EFFICIENTLLM HF_CHECK SOURCE_DIR
HF_CHECK=${2:?usage: $0 EFFICIENTLLM HF_CHECK SOURCE_DIR}
set -- "$1" "$3"
source "$(dirname "$0")/../e2e/lib/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3 "$HERE/make_tiny_models.py" --broken "$WORK/hf"
compare() { /usr/bin/python3 "$HERE/compare.py" "$@"; }

job="$WORK/hf.json"
cat > "$job" <<JSON
{
  "name": "hf",
  "defaults": {
    "model": {"from_hf": "$WORK/hf/llama", "seq_len": 16},
    "training": {"steps": 4, "batch_size": 4, "lr": 2e-4, "min_lr": 2e-4, "warmup_steps": 0,
                 "weight_decay": 0, "grad_clip": 0, "eval_every": 0, "eval_batches": 2,
                 "warmup_iters": 1},
    "data": {"corpus": ["$(corpus)"]}
  }
}
JSON

for arch in llama qwen2 neox; do
  d="$WORK/hf/$arch"
  "$HF_CHECK" "$d" "$d/reference.json" "$d/ours.json" --export "$d/roundtrip"
  compare reference "$d/reference.json" "$d/ours.json"
  compare same "$d" "$d/roundtrip"  # import → export
  for tp in 1 2; do
    run_mpi $tp "$BIN" run "$job" --out "$WORK/run-$arch-$tp" --set "model.from_hf=$d" \
      --set parallel.tp=$tp --set "training.export_hf=$WORK/export-$arch-$tp" >/dev/null
    json_check "$WORK/run-$arch-$tp/report.json" \
      'r["runs"][0]["config"]["model"]["vocab_size"] == 300 and math.isfinite(r["runs"][0]["quality"]["val_perplexity_final"])'
  done
  "$PY" "$SRC/tests/e2e/lib/equivalence.py" "$WORK/run-$arch-1/report.json" "$WORK/run-$arch-2/report.json"
  # export → import → export: the trained model comes back bit for bit
  "$HF_CHECK" "$WORK/export-$arch-1" "$d/reference.json" "$WORK/unused.json" --export "$WORK/again-$arch"
  compare same "$WORK/export-$arch-1" "$WORK/again-$arch"
done

# Bad checkpoints: one message naming the file, the key or tensor and what was expected.
bad="$WORK/hf/bad"
expect_error 2 "efficientllm: ${bad}_arch/config.json: /architectures/0: unknown architecture \"MistralForCausalLM\"; supported: LlamaForCausalLM, Qwen2ForCausalLM, GPTNeoXForCausalLM" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_arch"
expect_error 2 "efficientllm: ${bad}_rope_scaling/config.json: /rope_scaling: unsupported value {\"type\":\"linear\",\"factor\":2.0}: rope scaling (linear, dynamic, yarn, llama3, ...) is not supported" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_rope_scaling"
expect_error 2 "efficientllm: ${bad}_unknown_key/config.json: /sliding_window: unknown key: not supported by the import (docs/HF_IMPORT.md lists the keys it reads)" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_unknown_key"
expect_error 2 "efficientllm: ${bad}_missing/model.safetensors: tensor 'model.layers.1.mlp.up_proj.weight': missing; LlamaForCausalLM with this config.json needs it, shape [96, 64]" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_missing"
expect_error 2 "efficientllm: ${bad}_shape/model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight': has shape [64, 64]; config.json (LlamaForCausalLM) needs [32, 64]" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_shape"
expect_error 2 "efficientllm: ${bad}_dtype/model.safetensors: tensor 'model.norm.weight': has dtype BF16; config.json's torch_dtype \"float32\" needs F32" \
  "$BIN" validate "$job" --set "model.from_hf=${bad}_dtype"
expect_error 2 "efficientllm: $job: /defaults/model/n_layers: set by model.from_hf (\"$WORK/hf/llama/config.json\"); remove it from the job (from --set)" \
  "$BIN" validate "$job" --set model.n_layers=3
expect_error 2 "efficientllm: $job: /defaults/training/export_hf: cannot export to Hugging Face: model.bias must be \"none\" (Llama) or \"qkv\" (Qwen2) with rmsnorm (export_hf writes Llama, Qwen2 or GPT-NeoX) (from --set)" \
  "$BIN" validate "$job" --set model.from_hf= --set model.positions=rope --set model.norm=rmsnorm --set training.export_hf=x
# A refused checkpoint on 2 ranks: exit 2, no report written.
expect_error 2 "efficientllm: ${bad}_shape/model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight': has shape [64, 64]; config.json (LlamaForCausalLM) needs [32, 64]" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/refused" --set "model.from_hf=${bad}_shape" --set parallel.tp=2
[[ ! -e $WORK/refused ]] || fail "a refused import wrote $WORK/refused"
echo "1 passed, 0 failed"
