# Mixture of experts under every layout: the same MoE job on 1 rank, on 2 and 4 data-parallel
# ranks, and with the experts shared out over 2 or 4 expert-parallel ranks (dp 2 × ep 2,
# dp 4 × ep 2, dp 4 × ep 4), and with ZeRO-1 at ep = 1, gives the same loss and gradient norm per
# step and the same final parameters
# (lib/equivalence.py: the load-balancing loss is taken over the global batch, so the objective
# does not depend on the layout); the routing is in the report; bad layouts are refused.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job moe 10)
moe=(--set model.mlp=moe --set model.moe_experts=4 --set model.moe_d_ff=64 --set model.moe_z_coeff=0.001)
# the other routing options: renormalised top-k, a shared expert, SwiGLU experts, parallel wiring
options=(--set model.moe_renormalize=true --set model.moe_shared_experts=1 --set model.activation=swiglu
         --set model.wiring=parallel --set model.positions=rope)
# "dp ep zero1 options"
layouts=("1 1 0 0" "2 1 0 0" "2 2 0 0" "4 1 0 0" "4 2 0 0" "1 1 0 1" "2 1 1 1" "4 4 0 1")
reports=()
for layout in "${layouts[@]}"; do
  read -r dp ep zero1 opt <<<"$layout"
  extra=()
  [[ $opt == 1 ]] && extra=("${options[@]}")
  run_mpi "$dp" "$BIN" run "$job" --out "$WORK/$dp-$ep-$zero1-$opt" --set parallel.dp=$dp --set parallel.ep=$ep \
    --set parallel.zero1=$([[ $zero1 == 1 ]] && echo true || echo false) "${moe[@]}" "${extra[@]}" >/dev/null
  reports+=("$WORK/$dp-$ep-$zero1-$opt/report.json")
done
echo "top-2 of 4 GELU experts:"
"$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]:0:5}"
echo "renormalised, shared expert, SwiGLU, parallel wiring:"
"$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]:5:3}"
"$PY" - "${reports[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    run = json.load(open(path))["runs"][0]
    dp, ep = path.split("/")[-2].split("-")[:2]
    routing = run["routing"]
    assert len(routing["layers"]) == 2 and len(routing["aux_loss_per_step"]) == 10, path
    assert all(l["experts"] == 4 for l in routing["layers"]), path
    # every step routes all of the global batch's assignments: 8 sequences × 32 tokens × top-2
    for layer in routing["layers"]:
        assert abs(sum(layer["tokens_per_expert_per_step"]) - 8 * 32 * 2) < 1e-6, (path, layer)
    assert run["model"]["active_parameters_per_token"] < run["model"]["parameters"], path
    assert run["latency"]["layout"]["ep"] == int(ep), path
    assert run["replicas_identical"] is (True if int(dp) > int(ep) else None), path
    print(f"  dp={dp} ep={ep}: aux {routing['aux_loss_per_step'][0]:.5f} -> {routing['aux_loss_per_step'][-1]:.5f}, "
          f"expert-parallel time {run['latency']['expert_parallel']['mean'] * 1e3:.2f} ms/step")
PY
expect_error 2 "efficientllm: $job: /defaults/parallel/ep: moe_experts (4) must be divisible by ep (3): each expert-parallel rank holds the same number of experts (from --set)" \
  "$BIN" validate "$job" --set parallel.dp=3 --set parallel.ep=3 --set training.batch_size=9 "${moe[@]}"
expect_error 2 "efficientllm: $job: /defaults/parallel/ep: ep (2) needs a mixture-of-experts layer (model.mlp = \"moe\") (from --set)" \
  "$BIN" validate "$job" --set parallel.dp=2 --set parallel.ep=2
echo "1 passed, 0 failed"
