# Parallel layouts are equivalent: the same job (same global batch, same seed) on 1×1, 2×1, 1×2
# and 2×2 (dp × tp) ranks gives, within float tolerance, the same loss and global gradient norm
# at every step and the same final parameters (lib/equivalence.py), for every block kind: MHA,
# GQA, MLA, NSA, the Pythia block (parallel wiring, partial rotary) and a hybrid stack. MHA and
# GQA also run on 1×4 (GQA's 2 kv heads replicated) and with sequence parallelism on 1×2, 2×2 and
# 1×4. Data-parallel replicas of each shard end bit-identical; a layout that does not fit is refused.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job tpeq 12)
rope=(--set model.positions=rope)
declare -A kinds=(
  [mha]=""
  [gqa]="--set model.n_kv_heads=2"
  [mla]="${rope[*]} --set model.attention=mla --set model.mla_kv_latent=16 --set model.mla_q_latent=8 --set model.mla_rope_dim=4"
  [nsa]="${rope[*]} --set model.attention=nsa --set model.n_kv_heads=2 --set model.nsa_block=8 --set model.nsa_stride=4 --set model.nsa_select_block=8 --set model.nsa_select_n=3 --set model.nsa_window=16"
  [pythia]="${rope[*]} --set model.wiring=parallel --set model.rotary_pct=0.25 --set model.norm=layernorm --set model.activation=gelu"
  [hybrid]="${rope[*]} --set model.n_layers=3 --set model.activation=swiglu --set model.norm=rmsnorm --set model.n_kv_heads=2 --set model.layer_pattern=[{},{\"attention\":\"mla\",\"n_kv_heads\":0,\"mla_kv_latent\":16,\"mla_rope_dim\":4,\"wiring\":\"parallel\"}] --set model.layer_overrides={\"2\":{\"window\":8,\"d_ff\":64}}"
)
# "dp tp sp": sp = 1 turns on sequence parallelism
common=("1 1 0" "2 1 0" "1 2 0" "2 2 0")
extra=("1 4 0" "1 2 1" "2 2 1" "1 4 1")
for kind in mha gqa mla nsa pythia hybrid; do
  layouts=("${common[@]}")
  [[ $kind == mha || $kind == gqa ]] && layouts+=("${extra[@]}")
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
  "$PY" - "${reports[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    run = json.load(open(path))["runs"][0]
    dp, tp, sp = path.split("/")[-2].split("-")[1:]
    assert run["latency"]["layout"]["sequence_parallel"] == (sp == "1" and tp != "1"), path
    assert run["replicas_identical"] is (True if dp != "1" else None), path
    assert run["replicated_tensors_identical"] is (None if dp == tp == "1" else True), path
base = json.load(open(sys.argv[1]))["runs"][0]["loss_per_step"]
assert base[-1] < base[0] - 0.5, "the loss did not fall"
PY
done
expect_error 2 "efficientllm: $job: run \"tpeq\" needs parallel.dp × parallel.tp = 1 × 2 = 2 MPI ranks but the job was launched on 4; launch with mpirun -np 2 or pass --set parallel.dp=2" \
  run_mpi 4 "$BIN" run "$job" --out "$WORK/bad" --set parallel.tp=2
expect_error 2 "efficientllm: $job: /defaults/parallel/tp: n_heads (4) must be divisible by tp (3) (from --set)" \
  "$BIN" validate "$job" --set parallel.tp=3
echo "1 passed, 0 failed"
