# Tensor-parallel inference across MPI ranks (docs/INFERENCE.md): a model saved by a short
# pretraining run, served by `bench-infer` on tp = 1 and on tp = 2 ranks (mpirun -np 2), gives the
# same perplexity, KL and top-1 agreement at every weight format (the same next-token logits), the
# root writes the one report with each rank's figures and the weight bytes summed over the shards;
# `generate` streams the same tokens on 1 and 2 ranks; layouts inference cannot serve are refused
# with one message.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job tpinf 150)
run_mpi 1 "$BIN" run "$job" --out "$WORK/train" --set checkpoint.save=true >/dev/null
trained=(--set model.init_from="$WORK/train/checkpoints/tpinf")
small=(--set inference.prompt_tokens=16 --set inference.gen_tokens=8 --set inference.repetitions=2
       --set inference.formats=fp32,bf16,int8,int4 --set inference.quality_windows=8)
run_mpi 1 "$BIN" bench-infer "$job" --out "$WORK/tp1" "${trained[@]}" "${small[@]}" >/dev/null
run_mpi 2 "$BIN" bench-infer "$job" --out "$WORK/tp2" "${trained[@]}" "${small[@]}" --set parallel.tp=2 >/dev/null
[[ ! -e $WORK/tp2/inference.json.1 ]] || fail "a second report"

"$PY" - "$WORK/tp1/inference.json" "$WORK/tp2/inference.json" <<'PY'
import json, sys
one, two = ({r["format"]: r for r in json.load(open(p))["runs"][0]["formats"]} for p in sys.argv[1:])
assert json.load(open(sys.argv[2]))["runs"][0]["tensor_parallel"] == 2
for name in one:
    a, b = one[name], two[name]
    qa, qb = a["quality"], b["quality"]
    print(f"{name}: ppl tp1 {qa['ppl']:.6f} tp2 {qb['ppl']:.6f}, KL {qa['kl_divergence']:.2e} / {qb['kl_divergence']:.2e}, "
          f"top-1 {qa['top1_agreement']:.4f} / {qb['top1_agreement']:.4f}, weights {a['weight_bytes']['total']} / {b['weight_bytes']['total']} B")
    # the same logits up to the order of float sums: perplexities to 1e-5, KL to 1e-6 nats absolute
    for key in ("ppl_fp32", "ppl"):
        assert abs(qb[key] / qa[key] - 1) < 1e-5, (name, key, qa[key], qb[key])
    assert abs(qb["kl_divergence"] - qa["kl_divergence"]) < 1e-6 + 1e-3 * qa["kl_divergence"], (name, qa, qb)
    assert abs(qb["top1_agreement"] - qa["top1_agreement"]) <= 1.0 / qa["scored_tokens"] + 1e-12, (name, qa, qb)
    # every rank's figures, the shards' bytes summed: the linear layers are split, not copied
    assert [r["rank"] for r in b["ranks"]] == [0, 1] and [r["rank"] for r in a["ranks"]] == [0]
    assert sum(r["weight_bytes"]["total"] for r in b["ranks"]) == b["weight_bytes"]["total"]
    assert b["weight_bytes"]["linear_layers"] == a["weight_bytes"]["linear_layers"], (a["weight_bytes"], b["weight_bytes"])
    assert b["weight_bytes"]["fp32_rest"] >= a["weight_bytes"]["fp32_rest"]  # norms replicated on each rank
    assert b["across_ranks"]["tp_comm_seconds"]["max"] > 0 and a["across_ranks"]["tp_comm_seconds"]["max"] == 0
    assert b["tg"]["tokens_per_s"]["mean"] > 0
PY

# the kernel path and quantization method in the report: the CPU's widest path, or the forced one
"$PY" - "$WORK/tp2/inference.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
k = run["kernels"]
assert k["isa_source"] == "the widest path this CPU supports" and k["isa"] == k["supported"].split()[-1], k
methods = {r["format"]: (r["kernel"], r["quantization"]) for r in run["formats"]}
assert methods["fp32"] == ("fp32 sgemm (BLAS)", "none (the fp32 weights)"), methods
assert methods["bf16"] == (k["isa"], "round-to-nearest-even"), methods
assert methods["int4"][0] == k["isa"] and methods["int4"][1].startswith("round-to-nearest ("), methods
PY
ELLM_QUANT_ISA=scalar "$BIN" bench-infer "$job" --out "$WORK/scalar" "${trained[@]}" "${small[@]}" \
  --set inference.formats=int4 --set inference.quality_windows=0 >/dev/null
json_check "$WORK/scalar/inference.json" 'r["runs"][0]["kernels"]["isa"] == "scalar" and r["runs"][0]["kernels"]["isa_source"] == "ELLM_QUANT_ISA" and r["runs"][0]["formats"][0]["kernel"] == "scalar"'
grep -q 'Quantized kernels: `scalar` (ELLM_QUANT_ISA' "$WORK/scalar/inference.md" || fail "inference.md does not name the kernel path"

# --from-run DIR: each run served from DIR/checkpoints/<run name>, the same model as init_from
"$BIN" bench-infer "$job" --out "$WORK/from" --from-run "$WORK/train" "${small[@]}" --set inference.formats=fp32 >/dev/null
"$PY" - "$WORK/from/inference.json" "$WORK/tp1/inference.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["runs"][0] for p in sys.argv[1:])
assert a["config"]["model"]["init_from"].endswith("/checkpoints/tpinf"), a["config"]["model"]["init_from"]
assert a["formats"][0]["quality"]["ppl"] == b["formats"][0]["quality"]["ppl_fp32"], (a["formats"][0]["quality"], b["formats"][0]["quality"])
PY
expect_error 2 "efficientllm bench-infer: $job: --from-run: no checkpoint of run \"tpinf\" at $WORK/nothing/checkpoints/tpinf (did efficientllm run save it? checkpoint.save)" \
  "$BIN" bench-infer "$job" --from-run "$WORK/nothing"

# generate: the same tokens from one rank and from two (greedy, and sampled with a seed)
for sampling in "--temperature 0" "--temperature 0.8 --top-p 0.9 --seed 5"; do
  # shellcheck disable=SC2086  # the sampling options are words
  gen=(generate "$job" "${trained[@]}" --prompt "The " --max-tokens 20 $sampling)
  a=$(run_mpi 1 "$BIN" "${gen[@]}" 2>/dev/null)
  b=$(run_mpi 2 "$BIN" "${gen[@]}" --set parallel.tp=2 2>/dev/null)
  [[ $a == "$b" ]] || fail "generate ($sampling): tp = 1 gave '$a', tp = 2 gave '$b'"
  [[ $a == "The "* && ${#a} -gt 4 ]] || fail "generate: '$a' does not continue the prompt"
done

# layouts inference cannot serve: one message (from the root), exit 2
expect_error 2 "efficientllm bench-infer: $job: /parallel/dp: run \"tpinf\": inference serves one model over parallel.tp ranks; parallel.dp = 2 is not supported (allowed: 1)" \
  run_mpi 2 "$BIN" bench-infer "$job" "${small[@]}" --set parallel.dp=2
expect_error 2 "efficientllm generate: $job: /parallel/tp: run \"tpinf\" serves its model on parallel.tp = 1 ranks but the command was launched on 2; launch with mpirun -np 1 or pass --set parallel.tp=2" \
  run_mpi 2 "$BIN" generate "$job" --prompt "The "
expect_error 2 "efficientllm bench-infer: $job: /defaults/parallel/tp: n_heads (4) must be divisible by tp (3) (from --set)" \
  run_mpi 3 "$BIN" bench-infer "$job" --set parallel.tp=3
echo "tensor-parallel inference: OK"
