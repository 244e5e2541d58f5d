#!/usr/bin/env bash
# A throw-away Slurm cluster on this one machine: munged, slurmctld and N slurmd "nodes" n1..nN,
# all state, logs and sockets under DIR. Used by tests/e2e/slurm.sh, and useful to try the
# scripts in scripts/slurm/ without a cluster. Needs root (Debian: slurmd slurmctld slurm-client munge).
#   scripts/cluster/local-slurm.sh start DIR [NODES]   (default 2 nodes; then: export SLURM_CONF=DIR/slurm.conf)
#   scripts/cluster/local-slurm.sh stop DIR            (ends running jobs, stops every process it started)
#
# Each slurmd runs in its own UTS namespace with hostname nK, so the ranks of different "nodes"
# see different host names, as on a real cluster: Open MPI names its shared-memory segments after
# the host, and reports show which node each rank ran on.
set -euo pipefail

die() { echo "local-slurm: $*" >&2; exit 1; }

# A TCP port nobody listens on (the cluster must not collide with another on this machine).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if [[ -z $(ss -Hltn "sport = :$p") ]]; then echo "$p"; return; fi
  done
  die "no free TCP port found"
}

# Processes whose UTS namespace is the one recorded in FILE: a node's slurmd and everything it
# started (step daemons, tasks), even after they re-parented to init.
pids_in_uts() {
  local want proc
  want=$(cat "$1")
  for proc in /proc/[0-9]*; do
    [[ $(readlink "$proc/ns/uts" 2>/dev/null) == "$want" ]] && echo "${proc#/proc/}"
  done
  return 0
}

# True while PID runs (a zombie has ended: in a container nobody may reap it).
running() {
  local state
  state=$(grep -s '^State:' "/proc/$1/status") && [[ $state != *zombie* ]]
}

# TERM the given pids, then KILL whatever still runs after 5 s.
terminate() {
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 50); do
    local alive=() p
    for p; do running "$p" && alive+=("$p"); done
    ((${#alive[@]} == 0)) && return 0
    set -- "${alive[@]}"
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

write_config() {
  local dir=$1 nodes=$2 hw
  # The node's CPUs, sockets and memory as slurmd detects them, without its name and uptime.
  hw=$(slurmd -C | sed -n 's/^NodeName=[^ ]* //p')
  cat > "$dir/slurm.conf" <<CONF
ClusterName=ellmlocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
# One TmpFS per node, or the second node's PMIx server fails with "File exists".
TmpFS=$dir/tmp/%n
# Several slurmd on one kernel: no cgroups, no CPU binding by Slurm (both would fight).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PropagateResourceLimits=NONE
ReturnToService=2
KillWait=5
MailProg=/bin/true
CONF
  for i in $(seq "$nodes"); do
    echo "NodeName=n$i NodeHostname=n$i NodeAddr=127.0.0.1 Port=$(free_port) $hw State=UNKNOWN" >> "$dir/slurm.conf"
  done
  echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$dir/slurm.conf"
}

start() {
  local dir=$1 nodes=$2
  [[ $(id -u) == 0 ]] || die "must run as root (munged and slurmd switch users)"
  for cmd in munged slurmctld slurmd sinfo ss unshare; do
    command -v "$cmd" >/dev/null || die "$cmd not found: run scripts/setup.sh"
  done
  [[ -z $(ls -A "$dir" 2>/dev/null) ]] || die "$dir is not empty: give a new directory"
  mkdir -p "$dir"/{munge,state,spool,run,log,tmp}
  dir=$(cd "$dir" && pwd)
  # shellcheck disable=SC2064  # expanded now: $dir is local and gone when the trap runs
  trap "echo 'local-slurm: start failed; logs in $dir/log' >&2; stop $(printf %q "$dir")" EXIT

  # munged runs as user munge and checks that every directory on the way to its files is
  # reachable and not writable by others.
  chmod 0755 "$dir" "$dir/munge"
  runuser -u munge -- test -x "$dir" || die "user munge cannot reach $dir: its parent directories need o+x"
  mungekey --create --keyfile="$dir/munge/munge.key"
  chown -R munge:munge "$dir/munge"
  chmod 0400 "$dir/munge/munge.key"
  runuser -u munge -- munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/munged.seed"

  write_config "$dir" "$nodes"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  for i in $(seq "$nodes"); do
    mkdir -p "$dir/spool/n$i" "$dir/tmp/n$i"
    unshare --uts sh -c "hostname n$i && exec slurmd -N n$i -f '$SLURM_CONF'"
    # The daemon writes its pid file a moment after forking.
    for _ in $(seq 100); do [[ -s $dir/run/slurmd-n$i.pid ]] && break; sleep 0.05; done
    readlink "/proc/$(cat "$dir/run/slurmd-n$i.pid")/ns/uts" > "$dir/run/n$i.uts"
  done

  # Ready when every node is idle (a loaded machine may take a while to register them).
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if [[ $(sinfo -h -N -o %T 2>/dev/null | grep -cx idle) == "$nodes" ]]; then
      trap - EXIT
      echo "local-slurm: $nodes node(s) up; export SLURM_CONF=$SLURM_CONF" >&2
      return 0
    fi
    sleep 0.1
  done
  sinfo -N >&2 || true
  tail -n 20 "$dir"/log/*.log >&2 || true
  die "the nodes did not come up within 60 s"
}

# The pid in FILE if that process still is one started for DIR (a stale pid may be reused).
own_pid() {
  local pid
  [[ -s $1 ]] || return 0
  pid=$(cat "$1")
  grep -qaF "$2" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  return 0
}

stop() {
  local dir=$1 pids f
  [[ -d $dir/run ]] || die "$dir holds no cluster"
  # slurmctld, and on every node slurmd with the step daemons and ranks of any job still running.
  mapfile -t pids < <(own_pid "$dir/run/slurmctld.pid" "$dir"
                      for f in "$dir"/run/n*.uts; do [[ -f $f ]] && pids_in_uts "$f"; done)
  terminate "${pids[@]}"
  rm -f "$dir"/run/n*.uts
  mapfile -t pids < <(own_pid "$dir/munge/munged.pid" "$dir")
  terminate "${pids[@]}"
}

case "${1:-}" in
  start) start "${2:?usage: $0 start DIR [NODES]}" "${3:-2}" ;;
  stop) stop "${2:?usage: $0 stop DIR}" ;;
  *) die "usage: $0 start DIR [NODES] | stop DIR" ;;
esac
