#!/usr/bin/env bash
# Validation of the scaling predictor (docs/SCALING.md) on the network-namespace cluster of the
# e2e tests: 8 "hosts" on this machine, one rank each, every host's link shaped by tc (a token
# bucket, tbf, on its egress: this kernel has no netem, so no added delay; the latency is the
# veth/TCP stack's own), so that the gradient all-reduce dominates the step.
#   1. sweeps: bench_collectives on 2 unshaped local ranks (shared memory) and on 2, 4, 8 shaped
#      hosts (the interconnect); `efficientllm predict fit` → network.json
#   2. the job on 1, 2, 4, 8 hosts data parallel, and tp = 2 on 2 and 4 hosts (weak scaling:
#      --batch sequences per replica), its report each
#   3. `efficientllm predict` from the 1-rank report, the fitted network, one rank per node and
#      the machine's cores shared by all ranks (--cores: compute slows by ranks / cores)
#   4. predicted vs measured step time per layout → OUT/validation.md (with the load average)
# Needs root (ip netns, tc). Usage:
#   scripts/predict_validate.sh [--rate 40mbit] [--burst 256kb] [--batch 4] [--steps 6] [--out DIR]
#                               [--max-kib 1024] [--band-edge BYTES]...
#                               [--network NET.json: skip the sweeps, use this file]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rate=40mbit burst=256kb batch=4 steps=6 network='' max_kib=1024 bands=()
out=results/predict-validation-$(date -u +%Y%m%dT%H%M%S)
while (($#)); do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --burst) burst=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --max-kib) max_kib=$2; shift 2 ;;             # the sweeps' largest message (default: the 1 MiB bucket)
    --band-edge) bands+=(--band-edge "$2"); shift 2 ;;  # fit α–β per size band (docs/SCALING.md)
    --network) network=$(realpath "$2"); shift 2 ;;  # a network.json of an earlier run: no sweeps
    *) echo "predict_validate.sh: unknown option '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=${ELLM_BIN:-$root/build/efficientllm}
bench=${ELLM_BENCH:-$root/build/bench/bench_collectives}
source "$root/tests/e2e/lib/common.sh" "$bin" "$root"
source "$root/tests/e2e/lib/netns.sh"
export OPENBLAS_NUM_THREADS=1  # one thread per rank: the ranks share the machine's cores
# More ranks than cores: a rank waiting in MPI yields its core (sched_yield) instead of spinning on
# it, as Open MPI does by itself when it knows a node is oversubscribed (here each "host" has 2
# slots, so it cannot know); otherwise the waiting ranks starve the ones with work to do.
export OMPI_MCA_mpi_yield_when_idle=1
cores=$(nproc)

if [[ -z $network ]]; then  # shared memory: two local ranks, before the cluster's MPI settings
  mpirun -np 2 --bind-to none "$bench" --out "$out/sweep-shm-2.json" --max-kib 4096 > "$out/sweep-shm-2.txt"
  "$bin" predict fit "$out/sweep-shm-2.json" --link shared_memory "${bands[@]}" --out "$out/network.json" > /dev/null
else
  cp "$network" "$out/network.json"
fi
netns_up 8
for i in $(seq 8); do
  ip netns exec "${NETNS_PREFIX}node$i" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 2s
done
echo "links: tbf rate $rate burst $burst on every host's egress; $cores cores; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/setup.txt"

for p in $([[ -z $network ]] && echo 2 4 8); do
  netns_exec 900 mpirun -np "$p" --hostfile "$HOSTFILE" --map-by node --bind-to none "$bench" \
    --out "$out/sweep-net-$p.json" --max-kib "$max_kib" --factor 2 --repeat 0.5 > "$out/sweep-net-$p.txt"
done
[[ -n $network ]] || "$bin" predict fit "$out"/sweep-net-{2,4,8}.json --link interconnect "${bands[@]}" \
  --out "$out/network.json" > /dev/null

cat > "$out/job.json" <<JSON
{
  "name": "predict-validation",
  "defaults": {
    "model": {"n_layers": 4, "d_model": 128, "n_heads": 4, "d_ff": 512, "seq_len": 64},
    "training": {"steps": $steps, "batch_size": $batch, "warmup_steps": 1, "warmup_iters": 2, "eval_every": 0, "eval_batches": 1,
                 "log_every": 100},
    "parallel": {"overlap": false},
    "data": {"corpus": ["$(corpus)"]}
  }
}
JSON
# Layouts dp × tp: data parallel on 1-8 hosts, and tp = 2 (its group across 2 hosts) with dp 1, 2.
for layout in 1x1 2x1 4x1 8x1 1x2 2x2; do
  dp=${layout%x*} tp=${layout#*x}
  netns_exec 900 mpirun -np $((dp * tp)) --hostfile "$HOSTFILE" --map-by node --bind-to none \
    "$bin" run "$out/job.json" --set parallel.dp=$dp --set parallel.tp=$tp --set training.batch_size=$((batch * dp)) \
    --out "$out/layout-$layout" > "$out/layout-$layout.log" 2>&1
  echo "dp $dp x tp $tp: load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/setup.txt"
done
for tp in 1 2; do
  "$bin" predict "$out/job.json" --report "$out/layout-1x1/report.json" --network "$out/network.json" \
    --ranks-per-node 1 --cores "$cores" --max-ranks 8 --tp $tp --json > "$out/prediction-tp$tp.json"
  "$bin" predict "$out/job.json" --report "$out/layout-1x1/report.json" --network "$out/network.json" \
    --ranks-per-node 1 --cores "$cores" --max-ranks 8 --tp $tp > "$out/prediction-tp$tp.txt"
done
"$PY" - "$out" <<'PY' | tee "$out/validation.md"
import json, sys
out = sys.argv[1]
pred = {}
for tp in (1, 2):
    for p in json.load(open(f"{out}/prediction-tp{tp}.json"))["curve"]:
        pred[(p["dp"], p["tp"])] = p
print("| dp × tp | ranks | predicted compute ms | predicted comm ms | predicted step ms | measured step ms | measured comm ms | error |")
print("|---|---|---|---|---|---|---|---|")
for dp, tp in ((1, 1), (2, 1), (4, 1), (8, 1), (1, 2), (2, 2)):
    ranks = json.load(open(f"{out}/layout-{dp}x{tp}/report.json"))["runs"][0]["ranks"]
    step = sum(r["step_seconds"]["mean"] for r in ranks) / len(ranks)
    comm = sum(r["comm_seconds"]["mean"] for r in ranks) / len(ranks)
    p = pred[(dp, tp)]
    err = (p["step_s"] - step) / step
    print(f"| {dp} × {tp} | {dp * tp} | {p['compute_s']*1e3:.0f} | {(p['tp_s']+p['dp_s']+p['ep_s'])*1e3:.0f} "
          f"| {p['step_s']*1e3:.0f} | {step*1e3:.0f} | {comm*1e3:.0f} | {err*100:+.1f} % |")
PY
cat "$out/setup.txt"
