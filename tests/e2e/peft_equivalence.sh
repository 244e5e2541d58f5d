# Fine-tuning under every layout (docs/PEFT.md): LoRA, LoRA with dropout, DoRA (its row norms
# of the row-parallel o and down summed over the ranks) and PiSSA (the SVD of the full weights),
# each on every linear, give on 1×1, 2×1 and 1×2 (dp × tp) ranks the same loss and gradient norm
# at every step and the same final parameters (lib/equivalence.py). The loss falls, and the
# report counts the adapters alone as trainable, with a gradient arena of their size.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job pefteq 12)
declare -A methods=(
  [lora]="--set finetune.method=lora --set finetune.target_modules=[\"all\"] --set finetune.rank=4"
  [lora_dropout]="--set finetune.method=lora --set finetune.target_modules=[\"all\"] --set finetune.rank=4 --set finetune.dropout=0.1"
  [dora]="--set finetune.method=dora --set finetune.target_modules=[\"all\"] --set finetune.rank=4"
  [pissa]="--set finetune.method=pissa --set finetune.target_modules=[\"all\"] --set finetune.rank=4"
)
for method in lora lora_dropout dora pissa; do
  reports=()
  for layout in "1 1" "2 1" "1 2"; do
    read -r dp tp <<<"$layout"
    out="$WORK/$method-$dp-$tp"
    # shellcheck disable=SC2086  # the method's options are words
    run_mpi $((dp * tp)) "$BIN" run "$job" --out "$out" --set parallel.dp=$dp --set parallel.tp=$tp \
      --set training.lr=3e-2 ${methods[$method]} >/dev/null
    reports+=("$out/report.json")
  done
  echo "$method:"
  "$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]}"
  "$PY" - "${reports[@]}" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
model = run["model"]
assert 0 < model["trainable_parameters"] < model["parameters"] / 4, model
arena = run["ranks"][0]["arena_bytes"]  # one rank holds everything on 1×1
assert arena["gradients"] == 4 * model["trainable_parameters"], (arena, model)
assert arena["optimizer"] == 8 * model["trainable_parameters"], (arena, model)
loss = run["loss_per_step"]
assert loss[-1] < loss[0] - 0.1, f"the loss did not fall: {loss}"
PY
done
# Dropout did drop: its 1×1 run's losses are not LoRA's.
"$PY" - "$WORK/lora-1-1/report.json" "$WORK/lora_dropout-1-1/report.json" <<'PY'
import json, sys
plain, dropped = (json.load(open(p))["runs"][0]["loss_per_step"] for p in sys.argv[1:])
assert plain[0] == dropped[0], (plain[0], dropped[0])  # B = 0 at the start: the same first loss
assert max(abs(a - b) for a, b in zip(plain[1:], dropped[1:])) > 1e-3, (plain, dropped)
PY
echo "1 passed, 0 failed"
