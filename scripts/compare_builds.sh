#!/usr/bin/env bash
# scripts/compare_builds.sh OLD_BIN NEW_BIN: the same tiny 8-step jobs (every attention variant,
# dp, tp, sequence parallelism, ZeRO-1) through two builds of efficientllm; prints, per job, the
# largest relative difference of the loss and gradient-norm curves and whether the final
# parameters are bit-identical. Used to show that a refactor left the arithmetic unchanged.
set -u
OLD=$1 NEW=$2 W=$(mktemp -d)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
cat > $W/job.json <<JSON
{"name": "cmp", "defaults": {
  "model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "seq_len": 32},
  "training": {"steps": 8, "batch_size": 8, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 3,
               "eval_every": 0, "eval_batches": 2, "warmup_iters": 1, "log_every": 5},
  "data": {"corpus": ["/usr/share/games/fortunes/fortunes"]}, "metrics": {"sample_period_ms": 0}}}
JSON
run() { # name np sets...
  local name=$1 np=$2; shift 2
  for b in old new; do
    local bin=$OLD; [[ $b == new ]] && bin=$NEW
    mpirun -np $np $bin run $W/job.json --out $W/$b-$name "$@" >/dev/null 2>$W/$b-$name.err || { echo "$b $name FAILED"; tail -3 $W/$b-$name.err; }
  done
  python3 - $W/old-$name/report.json $W/new-$name/report.json $name <<'PY'
import json,sys
try:
  a,b=(json.load(open(p))["runs"][0] for p in sys.argv[1:3])
except Exception as e:
  print(sys.argv[3], "missing", e); sys.exit()
def d(k): return max(abs(x-y)/max(abs(x),1e-30) for x,y in zip(a[k],b[k]))
fp = a["ranks"][0]["param_fingerprint"]==b["ranks"][0]["param_fingerprint"]
print(f"{sys.argv[3]:28s} loss {d('loss_per_step'):.1e} gnorm {d('grad_norm_per_step'):.1e} params_identical {fp}  params {a['model']['parameters']} {b['model']['parameters']}")
PY
}
run mha 1
run gqa_rope_swiglu_rms 1 --set model.n_kv_heads=2 --set model.positions=rope --set model.activation=swiglu --set model.norm=rmsnorm
run alibi_window 1 --set model.n_kv_heads=1 --set model.positions=alibi --set model.window=8
run sinus 1 --set model.positions=sinusoidal
run mla 1 --set model.attention=mla --set model.positions=rope --set model.mla_kv_latent=16 --set model.mla_q_latent=8 --set model.mla_rope_dim=4
run nsa 1 --set model.attention=nsa --set model.positions=rope --set model.n_kv_heads=2 --set model.nsa_block=8 --set model.nsa_stride=4 --set model.nsa_select_block=8 --set model.nsa_select_n=3 --set model.nsa_window=16
run dp2 2 --set parallel.dp=2
run tp2 2 --set parallel.tp=2
run tp2_kv1 2 --set parallel.tp=2 --set model.n_kv_heads=1
run tp2_sp 2 --set parallel.tp=2 --set parallel.sequence_parallel=true
run dp2_zero1 2 --set parallel.dp=2 --set parallel.zero1=true
