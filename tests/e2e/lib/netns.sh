# A cluster of "hosts" on this machine, for mpirun across nodes without Slurm: each host is a
# network namespace (own interface and address) whose processes also get their own host name.
# A head namespace holds the bridge that joins them and runs mpirun, so the test touches no
# interface or address outside namespaces it made. Source after common.sh; needs root.
#   netns_up N            hosts node1..nodeN (10.250.0.11...), $HOSTFILE with 2 slots each
#   netns_exec SECS CMD...  run CMD on the head with a time limit (mpirun reaches the hosts
#                           through lib/netns-rsh)
#   netns_pids HOST       pids running on HOST (e.g. node2)
#   netns_all_pids        pids running on any host, the head included
#   netns_link HOST down|up  pull HOST's cable out (its port on the bridge goes down) or back in
#   netns_down            kill what runs in the namespaces, delete them (the EXIT trap does it)

NETNS_PREFIX=ellm$$-
NETNS_CIDR=10.250.0.0/24
NETNS_HOSTS=()
export NETNS_PREFIX  # read by lib/netns-rsh, which mpirun runs

# Open MPI settings for the cluster: TCP only over the cluster's subnet, reach hosts through the
# namespace rsh agent, own shared-memory and session directories (removed with $WORK), and a lost
# host detected within seconds (TCP keepalive on the daemons' connections; docs/CLUSTER.md).
netns_mca() {
  export OMPI_MCA_plm_rsh_agent=$SRC/tests/e2e/lib/netns-rsh
  export OMPI_MCA_plm_rsh_no_tree_spawn=1
  export OMPI_MCA_btl_tcp_if_include=$NETNS_CIDR OMPI_MCA_oob_tcp_if_include=$NETNS_CIDR
  export OMPI_MCA_oob_tcp_keepalive_time=5 OMPI_MCA_oob_tcp_keepalive_intvl=2 OMPI_MCA_oob_tcp_keepalive_probes=3
  export OMPI_MCA_btl_vader_backing_directory=$NETNS_SHM OMPI_MCA_orte_tmpdir_base=$WORK/ompi
}

netns_up() {
  local n=$1 head=${NETNS_PREFIX}head
  [[ $(id -u) == 0 ]] || fail "the namespace cluster needs root (ip netns)"
  NETNS_SHM=$(mktemp -d -p /dev/shm ellm-netns.XXXXXX)
  trap 'netns_down; rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/ompi"
  ip netns add "$head"
  NETNS_HOSTS+=(head)
  ip -n "$head" link add br0 type bridge
  ip -n "$head" addr add 10.250.0.1/24 dev br0
  ip -n "$head" link set br0 up
  ip -n "$head" link set lo up
  : > "$WORK/hostfile"
  for i in $(seq "$n"); do
    local ns=${NETNS_PREFIX}node$i
    ip netns add "$ns"
    NETNS_HOSTS+=("node$i")
    ip link add eth0 netns "$ns" type veth peer name "v$i" netns "$head"
    ip -n "$head" link set "v$i" master br0 up
    ip -n "$ns" addr add "10.250.0.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    echo "node$i slots=2" >> "$WORK/hostfile"
  done
  HOSTFILE=$WORK/hostfile
  netns_mca
}

netns_exec() {
  local secs=$1; shift
  timeout "$secs" ip netns exec "${NETNS_PREFIX}head" unshare --uts sh -c 'hostname head && exec "$@"' sh "$@"
}

netns_pids() { ip netns pids "${NETNS_PREFIX}$1"; }

netns_all_pids() {
  local h
  for h in "${NETNS_HOSTS[@]}"; do netns_pids "$h"; done
}

netns_link() { ip -n "${NETNS_PREFIX}head" link set "v${1#node}" "$2"; }

netns_down() {
  local h pids
  mapfile -t pids < <(netns_all_pids)
  if ((${#pids[@]})); then
    echo "netns: killing ${#pids[@]} process(es) left in the namespaces" >&2
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  for h in "${NETNS_HOSTS[@]}"; do ip netns del "${NETNS_PREFIX}$h" || echo "netns: cannot delete ${NETNS_PREFIX}$h" >&2; done
  NETNS_HOSTS=()
  [[ -z ${NETNS_SHM:-} ]] || rm -rf "$NETNS_SHM"
}
