# Mixture of experts under every layout: the same MoE job on 1 rank, on 2 and 4 data-parallel
# ranks, and with the experts shared out over 2 expert-parallel ranks (dp 2 × ep 2, dp 4 × ep 2)
# gives the same loss and gradient norm per step and the same final parameters
# (lib/equivalence.py: the load-balancing loss is taken over the global batch, so the objective
# does not depend on the layout); the routing is in the report; bad layouts are refused.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job moe 10)
moe=(--set model.mlp=moe --set model.moe_experts=4 --set model.moe_d_ff=64 --set model.moe_z_coeff=0.001)
layouts=("1 1" "2 1" "2 2" "4 1" "4 2")
reports=()
for layout in "${layouts[@]}"; do
  read -r dp ep <<<"$layout"
  run_mpi "$dp" "$BIN" run "$job" --out "$WORK/$dp-$ep" --set parallel.dp=$dp --set parallel.ep=$ep "${moe[@]}" >/dev/null
  reports+=("$WORK/$dp-$ep/report.json")
done
"$PY" "$(dirname "$0")/lib/equivalence.py" "${reports[@]}"
"$PY" - "${reports[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    run = json.load(open(path))["runs"][0]
    dp, ep = path.split("/")[-2].split("-")
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
