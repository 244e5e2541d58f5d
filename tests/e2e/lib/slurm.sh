# A real Slurm for the tests: scripts/cluster/local-slurm.sh starts munged, slurmctld and
# slurmd nodes n1..nN under $WORK/slurm and the EXIT trap stops them. Source after common.sh.
#   slurm_up N            start the cluster; exports SLURM_CONF and the jobs' Open MPI settings
#   slurm_submit ARGS...  sbatch ARGS, prints the job id
#   slurm_wait ID SECS    wait for the job to end; fails unless it COMPLETED with exit code 0

slurm_up() {
  # munged runs as user munge and must reach its files below $WORK.
  chmod 0711 "$WORK"
  SLURM_SHM=$(mktemp -d -p /dev/shm ellm-slurm.XXXXXX)
  trap '"$SRC/scripts/cluster/local-slurm.sh" stop "$WORK/slurm" || true; rm -rf "$WORK" "$SLURM_SHM"' EXIT
  "$SRC/scripts/cluster/local-slurm.sh" start "$WORK/slurm" "$1"
  export SLURM_CONF=$WORK/slurm/slurm.conf
  # The jobs inherit these: ranks of the "nodes" talk over loopback only, and Open MPI's session
  # and shared-memory files stay in directories the EXIT trap removes, even after a crash.
  export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
  export OMPI_MCA_orte_tmpdir_base=$WORK/ompi OMPI_MCA_btl_vader_backing_directory=$SLURM_SHM
}

# What the cluster looked like when a job failed: the nodes' states and the daemons' last words.
slurm_diagnose() {
  sinfo -N -l >&2 || true
  local log
  for log in "$WORK"/slurm/log/*.log; do
    echo "--- tail of $log" >&2
    tail -n 30 "$log" >&2
  done
}

slurm_submit() { sbatch --parsable "$@"; }

slurm_wait() {
  local id=$1 secs=$2 info deadline=$((SECONDS + $2))
  while info=$(scontrol show job "$id") && grep -qE 'JobState=(PENDING|CONFIGURING|RUNNING|COMPLETING) ' <<<"$info"; do
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  if ! grep -q 'JobState=COMPLETED ' <<<"$info" || ! grep -q ' ExitCode=0:0' <<<"$info"; then
    echo "$info" >&2
    cat "$WORK"/*"-$id.out" >&2 || true
    slurm_diagnose
    fail "Slurm job $id did not complete within ${secs}s: $(grep -o 'JobState=[A-Z_]*' <<<"$info") $(grep -o ' ExitCode=[0-9:]*' <<<"$info")"
  fi
}
