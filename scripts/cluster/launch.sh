#!/usr/bin/env bash
# Starts the ranks of an MPI program with srun or mpirun: the one launch line shared by the
# sbatch scripts (scripts/slurm/) and the scaling study (scripts/scaling.sh).
#   scripts/cluster/launch.sh [--launcher srun|mpirun] [--ranks R | --nodes N --ranks-per-node P]
#                             [--cpus-per-rank C] [--hostfile FILE] -- PROGRAM [ARGS...]
# --launcher   default: $ELLM_LAUNCHER, else srun inside a Slurm allocation and mpirun outside.
# --ranks R    R ranks; --nodes N --ranks-per-node P: P ranks on each of N nodes. Without either,
#              one rank per task of the Slurm allocation (or per slot of the hostfile).
# --cpus-per-rank C  bind each rank to C cores (its BLAS threads); inside an allocation the
#              default is the job's --cpus-per-task, with srun and with mpirun alike.
# --hostfile   mpirun only: the hosts and their slots (docs/CLUSTER.md).
# Open MPI settings (network interfaces, failure detection) come from OMPI_MCA_* variables.
set -euo pipefail

die() { echo "launch.sh: $*" >&2; exit 2; }

launcher=${ELLM_LAUNCHER:-}
ranks='' nodes='' per_node='' hostfile=''
cpus=${SLURM_CPUS_PER_TASK:-}  # set only inside an allocation made with --cpus-per-task
while (($#)); do
  case $1 in
    --launcher) launcher=${2:?--launcher needs srun or mpirun}; shift 2 ;;
    --ranks) ranks=${2:?--ranks needs a number}; shift 2 ;;
    --nodes) nodes=${2:?--nodes needs a number}; shift 2 ;;
    --ranks-per-node) per_node=${2:?--ranks-per-node needs a number}; shift 2 ;;
    --cpus-per-rank) cpus=${2:?--cpus-per-rank needs a number}; shift 2 ;;
    --hostfile) hostfile=${2:?--hostfile needs a file}; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (see the top of $0)" ;;
  esac
done
(($#)) || die "no program given after --"
# Numbers are checked before shell arithmetic ($((…)) would evaluate a[$(command)]) or a launcher
# sees them.
for pair in "--ranks:$ranks" "--nodes:$nodes" "--ranks-per-node:$per_node" "--cpus-per-rank:$cpus"; do
  value=${pair#*:}
  [[ -z $value || $value =~ ^[1-9][0-9]{0,6}$ ]] || die "${pair%%:*} takes a whole number ≥ 1, not '$value'"
done
if [[ -n $nodes ]]; then
  [[ -n $per_node ]] || die "--nodes needs --ranks-per-node"
  ranks=$((nodes * per_node))
fi
if [[ -z $launcher ]]; then
  launcher=mpirun
  [[ -n ${SLURM_JOB_ID:-} ]] && launcher=srun
fi
case $launcher in
  srun)
    [[ -n ${SLURM_JOB_ID:-} ]] || die "srun needs a Slurm allocation (sbatch or salloc); use --launcher mpirun"
    [[ -z $hostfile ]] || die "--hostfile is for mpirun; Slurm chooses the nodes"
    # A rank that dies ends the whole step at once instead of leaving its peers waiting.
    cmd=(srun --mpi=pmix --kill-on-bad-exit=1)
    [[ -n $ranks ]] && cmd+=(--ntasks="$ranks")
    [[ -n $nodes ]] && cmd+=(--nodes="$nodes" --ntasks-per-node="$per_node")
    # Since Slurm 22.05 srun no longer inherits the batch job's --cpus-per-task.
    [[ -n $cpus ]] && cmd+=(--cpus-per-task="$cpus")
    ;;
  mpirun)
    if [[ $(id -u) == 0 ]]; then  # Open MPI refuses to run as root unless told it is intended
      export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    cmd=(mpirun)
    [[ -n $ranks ]] && cmd+=(-np "$ranks")
    [[ -n $hostfile ]] && cmd+=(--hostfile "$hostfile")
    # Place ranks as Slurm would: P per node, each bound to its C cores.
    map=''
    [[ -n $nodes ]] && map=ppr:$per_node:node
    [[ -n $cpus ]] && map=${map:-slot}:PE=$cpus
    [[ -n $map ]] && cmd+=(--map-by "$map")
    ;;
  *) die "unknown launcher '$launcher' (allowed: srun, mpirun)" ;;
esac
echo "launch.sh: ${cmd[*]} $*" >&2
exec "${cmd[@]}" "$@"
