# Parallel layouts are equivalent: the same job (same global batch, same seed) on 1×1, 2×1, 1×2,
# 2×2 and 1×4 (dp × tp) ranks, and with sequence parallelism on 1×2, 2×2 and 1×4, gives the same
# loss curve within float tolerance, for an MHA and
# a GQA model (GQA's 2 kv heads are replicated at tp = 4); data-parallel replicas of each
# tensor-parallel shard end bit-identical; a layout that does not fit is refused.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job tpeq 12)
# "dp tp sp": sp = 1 turns on sequence parallelism
layouts=("1 1 0" "2 1 0" "1 2 0" "2 2 0" "1 4 0" "1 2 1" "2 2 1" "1 4 1")
for kv in 0 2; do
  for layout in "${layouts[@]}"; do
    read -r dp tp sp <<<"$layout"
    run_mpi $((dp * tp)) "$BIN" run "$job" --out "$WORK/kv$kv-$dp-$tp-$sp" --set parallel.dp=$dp \
      --set parallel.tp=$tp --set parallel.sequence_parallel=$([[ $sp == 1 ]] && echo true || echo false) \
      --set model.n_kv_heads=$kv >/dev/null
  done
  "$PY" - "$WORK" "$kv" "${layouts[@]}" <<'PY'
import json, sys
work, kv, layouts = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {l: json.load(open(f"{work}/kv{kv}-{l.replace(' ', '-')}/report.json"))["runs"][0] for l in layouts}
base = runs["1 1 0"]["loss_per_step"]
for layout, run in runs.items():
    loss = run["loss_per_step"]
    worst = max(abs(a - b) / abs(a) for a, b in zip(base, loss))
    dp, tp, sp = layout.split()
    assert run["latency"]["layout"]["sequence_parallel"] == (sp == "1" and tp != "1")
    print(f"kv_heads={kv} dp×tp={dp}×{tp}{' sequence-parallel' if sp == '1' else ''}: "
          f"max relative loss difference {worst:.1e}")
    assert len(loss) == len(base) and worst < 1e-4, (layout, worst)
    assert run["replicas_identical"] is (True if dp != "1" else None), layout
    assert run["replicated_tensors_identical"] is (True if layout != "1 1 0" else None), layout
assert base[-1] < base[0] - 0.5, "the loss did not fall"
PY
done
expect_error 2 "efficientllm: $job: run \"tpeq\" needs parallel.dp × parallel.tp = 1 × 2 = 2 MPI ranks but the job was launched on 4; launch with mpirun -np 2 or pass --set parallel.dp=2" \
  run_mpi 4 "$BIN" run "$job" --out "$WORK/bad" --set parallel.tp=2
expect_error 2 "efficientllm: $job: /defaults/parallel/tp: n_heads (4) must be divisible by tp (3) (from --set)" \
  "$BIN" validate "$job" --set parallel.tp=3
echo "1 passed, 0 failed"
