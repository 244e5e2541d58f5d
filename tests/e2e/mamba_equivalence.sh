# Mamba under every layout: a pure Mamba model (no positions) and a hybrid (an attention layer
# with RoPE between Mamba layers, via model.layer_pattern) give, on 1×1, 2×1, 1×2 and 2×2
# (dp × tp) ranks, the same loss and gradient norm at every step and the same final parameters
# (lib/equivalence.py); the hybrid also with sequence parallelism on 1×2. The loss falls, and the
# report counts a recurrent state per sequence instead of a KV cache (docs/ATTENTION_FREE.md).
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job mambaeq 12)
mamba=(--set model.token_mixer=mamba --set model.mamba_chunk=12)
declare -A kinds=(
  [mamba]="${mamba[*]} --set model.positions=none"
  [hybrid]="${mamba[*]} --set model.positions=rope --set model.n_layers=3 --set model.layer_pattern=[{},{\"token_mixer\":\"attention\",\"n_kv_heads\":2}]"
)
for kind in mamba hybrid; do
  layouts=("1 1 0" "2 1 0" "1 2 0" "2 2 0")
  [[ $kind == hybrid ]] && layouts+=("1 2 1")
  reports=()
  for layout in "${layouts[@]}"; do
    read -r dp tp sp <<<"$layout"
    out="$WORK/$kind-$dp-$tp-$sp"
    # shellcheck disable=SC2086  # the kind's options are words
    run_mpi $((dp * tp)) "$BIN" run "$job" --out "$out" --set parallel.dp=$dp --set parallel.tp=$tp \
      --set parallel.sequence_parallel=$([[ $sp == 1 ]] && echo true || echo false) ${kinds[$kind]} >/dev/null
    reports+=("$out/report.json")
  done
  echo "$kind:"
  "$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]}"
  "$PY" - "$kind" "${reports[@]}" <<'PY'
import json, sys
kind = sys.argv[1]
for path in sys.argv[2:]:
    run = json.load(open(path))["runs"][0]
    dp = path.split("/")[-2].split("-")[1]
    assert run["replicas_identical"] is (True if dp != "1" else None), path
run = json.load(open(sys.argv[2]))["runs"][0]
# d_inner 128, d_state 16, d_conv 4: (128·3 + 128·16) fp32 values per Mamba layer
mamba_layers = 2  # the hybrid: layers 0 and 2
assert run["model"]["state_bytes_per_sequence"] == 4 * mamba_layers * (128 * 3 + 128 * 16), run["model"]
assert (run["model"]["kv_cache_bytes_per_token"] == 0) == (kind == "mamba"), run["model"]
loss = run["loss_per_step"]
assert loss[-1] < loss[0] - 0.5, f"the loss did not fall: {loss}"
PY
done
echo "1 passed, 0 failed"
