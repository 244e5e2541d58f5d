# RWKV-6 under every layout: the same job on 1×1, 2×1, 1×2 and 2×2 (dp × tp) ranks, and on 1×2
# with sequence parallelism, gives the same loss and gradient norm per step and the same final
# parameters (lib/equivalence.py) — for a pure RWKV stack (time mix + channel mix: heads split
# over tp, the ddlerp, decay_w1 and receptance replicated with partial gradients) and a hybrid
# of RWKV and attention layers. The loss falls; a head count tp does not divide is refused.
# 6 steps: the layouts agree to ~1e-5 until the first gradient spike of this tiny model (step 7,
# norm ~6 against ~1.5–2), which amplifies float summation-order noise past 1e-4 (measured: the
# per-step differences are 1e-8 at first, 1e-5 by step 5, 1e-3–1e-2 in the grad norm after it).
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job rwkveq 6)
rwkv=(--set model.token_mixer=rwkv6 --set model.mlp=rwkv --set model.rwkv_head_size=16 --set model.rwkv_chunk=8
      --set model.rwkv_mix_lora=8 --set model.rwkv_decay_lora=8 --set model.positions=none)
declare -A kinds=(
  [rwkv]=""
  [hybrid]="--set model.n_layers=3 --set model.layer_overrides={\"1\":{\"token_mixer\":\"attention\",\"mlp\":\"dense\",\"wiring\":\"parallel\"}}"
)
layouts=("1 1 0" "2 1 0" "1 2 0" "2 2 0" "1 2 1")
for kind in rwkv hybrid; do
  reports=()
  for layout in "${layouts[@]}"; do
    read -r dp tp sp <<<"$layout"
    out="$WORK/$kind-$dp-$tp-$sp"
    # shellcheck disable=SC2086  # the kind's options are words
    run_mpi $((dp * tp)) "$BIN" run "$job" --out "$out" --set parallel.dp=$dp --set parallel.tp=$tp \
      --set parallel.sequence_parallel=$([[ $sp == 1 ]] && echo true || echo false) "${rwkv[@]}" ${kinds[$kind]} >/dev/null
    reports+=("$out/report.json")
  done
  echo "$kind:"
  "$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]}"
  "$PY" - "${reports[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    run = json.load(open(path))["runs"][0]
    dp = path.split("/")[-2].split("-")[1]
    assert run["replicas_identical"] is (True if dp != "1" else None), path
base = json.load(open(sys.argv[1]))["runs"][0]["loss_per_step"]
assert base[-1] < base[0] - 0.5, f"the loss did not fall: {base}"
PY
done
expect_error 2 "efficientllm: $job: /defaults/parallel/tp: with token_mixer \"rwkv6\" the heads d_model / rwkv_head_size (2) must be divisible by tp (4): each rank keeps whole heads (from --set)" \
  "$BIN" validate "$job" --set parallel.tp=4 "${rwkv[@]}" --set model.rwkv_head_size=32
echo "1 passed, 0 failed"
