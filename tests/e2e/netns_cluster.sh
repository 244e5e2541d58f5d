# mpirun across hosts with a hostfile, without Slurm: three "hosts" in network namespaces, each
# with its own address and host name, reached through an rsh agent. A strong-scaling study
# (scripts/scaling.sh) over 1, 2 and 3 hosts × 2 ranks of one core each ends in a 6-rank run whose report shows
# the three hosts, and in the study's table and plot.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/netns.sh"
netns_up 3
job=$(tiny_job netns 6)
out=$WORK/study
ELLM_BIN=$BIN netns_exec 180 "$SRC/scripts/scaling.sh" --hostfile "$HOSTFILE" --nodes "1 2 3" --ranks-per-node 2 \
  --cpus-per-rank 1 --batch 12 --out "$out" "$job" > "$WORK/stdout" || { cat "$WORK/stdout"; fail "the scaling study failed"; }

json_check "$out/ranks-6/report.json" 'r["world"]["ranks"] == 6 and r["world"]["hosts"] == ["node1", "node2", "node3"]'
json_check "$out/ranks-6/report.json" 'r["world"]["rank_hosts"] == ["node1", "node1", "node2", "node2", "node3", "node3"]'
json_check "$out/ranks-6/report.json" 'r["runs"][0]["replicas_identical"] and r["runs"][0]["latency"]["communication_share"] > 0'
# Each rank was bound to one core, so it ran one BLAS thread.
json_check "$out/ranks-6/report.json" '[x["placement"]["blas_threads"] for x in r["runs"][0]["ranks"]] == [1] * 6'
json_check "$out/ranks-2/report.json" 'r["world"]["hosts"] == ["node1"]'
json_check "$out/ranks-4/report.json" 'r["world"]["hosts"] == ["node1", "node2"]'
# Strong scaling: one global batch at every size, and the table shows all three sizes.
grep -q '^| netns | 2 | 1 | 12 |' "$WORK/stdout" || { cat "$WORK/stdout"; fail "table lacks the 2-rank row"; }
grep -q '^| netns | 4 | 2 | 12 |' "$out/scaling.md" || fail "scaling.md lacks the 4-rank row"
grep -q '^| netns | 6 | 3 | 12 |' "$out/scaling.md" || fail "scaling.md lacks the 6-rank row"
[[ $(head -c 8 "$out/scaling.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "scaling.png is not a PNG"
# Nothing of the job is left on any host.
[[ -z $(netns_all_pids) ]] || fail "processes left running: $(netns_all_pids)"
echo "1 passed, 0 failed"
