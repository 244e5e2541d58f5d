#!/usr/bin/env bash
# A scaling study: runs one job at several sizes, one output directory per size, then plots
# tokens/s, step latency, communication share and scaling efficiency against ideal
# (scaling.png) with one combined table (scaling.md) — see docs/CLUSTER.md.
#   scripts/scaling.sh [options] JOB.json [efficientllm run options, e.g. --set training.steps=50]
# Sizes (one of):
#   --ranks "1 2 4"                  rank counts
#   --nodes "1 2 4" [--ranks-per-node P]  node counts, P ranks on each (default 1)
# Options:
#   --mode strong|weak   strong (default): the global batch stays fixed (the job's, or --batch);
#                        weak: each rank keeps --batch sequences, so the global batch grows with the ranks
#   --batch B            the global batch (strong) or the per-rank batch (weak; required)
#   --out DIR            default results/scaling-<UTC time>; sizes go to DIR/ranks-R/
#   --hostfile FILE      hosts for mpirun (outside Slurm)
#   --cpus-per-rank C    bind each rank to C cores (default inside Slurm: --cpus-per-task)
#   --launcher srun|mpirun   default: srun inside a Slurm allocation, mpirun outside
# ELLM_BIN overrides the binary (default build/efficientllm of this checkout).
set -euo pipefail

die() { echo "scaling.sh: $*" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
mode=strong batch='' out='' ranks_list='' nodes_list='' per_node=1 launch_opts=()
while (($#)); do
  case $1 in
    --mode) mode=${2:?--mode needs strong or weak}; shift 2 ;;
    --batch) batch=${2:?--batch needs a number}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --ranks) ranks_list=${2:?--ranks needs a list such as \"1 2 4\"}; nodes_list=''; shift 2 ;;
    --nodes) nodes_list=${2:?--nodes needs a list such as \"1 2 4\"}; ranks_list=''; shift 2 ;;
    --ranks-per-node) per_node=${2:?--ranks-per-node needs a number}; shift 2 ;;
    --hostfile | --launcher | --cpus-per-rank) launch_opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -*) die "unknown option '$1' (see the top of $0)" ;;
    *) break ;;
  esac
done
job=${1:-}
[[ -n $job ]] || die "no job file given (usage at the top of $0)"
shift
[[ $mode == strong || $mode == weak ]] || die "--mode must be strong or weak, not '$mode'"
[[ $mode == strong || -n $batch ]] || die "weak scaling needs --batch PER_RANK_BATCH"
[[ -n $ranks_list || -n $nodes_list ]] || die "give the sizes: --ranks \"1 2 4\" or --nodes \"1 2 4\""
out=${out:-results/scaling-$(date -u +%Y%m%d-%H%M%S)}
bin=${ELLM_BIN:-$root/build/efficientllm}
[[ -x $bin ]] || die "$bin not found: build first (scripts/build.sh) or set ELLM_BIN"

# Every number is checked before it reaches shell arithmetic ($((…)) would evaluate an
# expression such as a[$(command)]) or a command line; the lists are split without globbing.
whole() { [[ $1 =~ ^[1-9][0-9]{0,6}$ ]] || die "$2 takes whole numbers ≥ 1, not '$1'"; }
whole "$per_node" --ranks-per-node
[[ -z $batch ]] || whole "$batch" --batch
read -r -a ranks_items <<<"$ranks_list"
read -r -a nodes_items <<<"$nodes_list"
# One entry per size: "RANKS" or "RANKS NODES".
sizes=()
for r in "${ranks_items[@]}"; do whole "$r" --ranks; sizes+=("$r"); done
for n in "${nodes_items[@]}"; do whole "$n" --nodes; sizes+=("$((n * per_node)) $n"); done

mkdir -p "$out"
dirs=()
for size in "${sizes[@]}"; do
  read -r ranks nodes <<<"$size"
  where=(--ranks "$ranks")
  [[ -n $nodes ]] && where=(--nodes "$nodes" --ranks-per-node "$per_node")
  sets=(--set "parallel.dp=$ranks")
  if [[ -n $batch ]]; then
    global=$batch
    [[ $mode == weak ]] && global=$((batch * ranks))
    sets+=(--set "training.batch_size=$global")
  fi
  dir=$out/ranks-$ranks
  echo "scaling.sh: $mode scaling, $ranks rank(s)${nodes:+ on $nodes node(s)} -> $dir" >&2
  "$root/scripts/cluster/launch.sh" "${launch_opts[@]}" "${where[@]}" -- \
    "$bin" run "$job" --out "$dir" "${sets[@]}" "$@" >/dev/null
  dirs+=("$dir")
done

# Debian's matplotlib belongs to the system python, not to any other python3 on the PATH.
"$bin" report --scaling "$mode" --out "$out/scaling" "${dirs[@]}"
