# Energy through the real binary on a fake machine: $ELLM_SYSFS_ROOT points the readers at a fake
# sysfs/procfs tree and $ELLM_NVML_LIBRARY at the fake NVML the tests build. RAPL + NVML are
# measured; an unreadable RAPL counter falls back (reason in the report) to the labelled
# estimate; the job's power model overrides the defaults; sampling off leaves them null.
source "$(dirname "$0")/lib/common.sh"
: "${ELLM_FAKE_NVML:?the fake NVML library (tests/CMakeLists.txt sets it)}"
root="$WORK/root"
mkdir -p "$root/proc" "$root/sys/class/powercap/intel-rapl:0"
cp /proc/meminfo /proc/cpuinfo /proc/stat "$root/proc/"
echo package-0 > "$root/sys/class/powercap/intel-rapl:0/name"
echo 262143328850 > "$root/sys/class/powercap/intel-rapl:0/max_energy_range_uj"
echo 1000 > "$root/sys/class/powercap/intel-rapl:0/energy_uj"
job=$(tiny_job energy 6)

ELLM_SYSFS_ROOT="$root" ELLM_NVML_LIBRARY="$ELLM_FAKE_NVML" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/measured" --set parallel.dp=2 --set metrics.sample_period_ms=20 >/dev/null
R="$WORK/measured/report.json"
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["sources"] == ["rapl", "nvml"]'
json_check "$R" '[d["name"] for d in r["runs"][0]["nodes"][0]["energy"]["domains"]] == ["package-0", "nvml0 Fake GPU 0", "nvml1 Fake GPU 1"]'
# The fake GPUs draw 1 J and 2 J per read; the fake package counter stands still.
json_check "$R" 'r["runs"][0]["energy"]["estimated"] is False and r["runs"][0]["energy"]["joules"] >= 3'
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["domains"][0]["joules"] == 0'
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["period_s"] == 0.02'
json_check "$R" 'r["runs"][0]["energy"]["j_per_token"] == r["runs"][0]["energy"]["joules"] / (8 * 32 * 5)  # the 5 measured steps (6, 1 warm-up)'
json_check "$R" 'r["runs"][0]["memory"]["amu"]["max"] < 1 and r["runs"][0]["memory"]["rss_peak_bytes"]["min"] > 0'

rm "$root/sys/class/powercap/intel-rapl:0/energy_uj"
mkdir "$root/sys/class/powercap/intel-rapl:0/energy_uj"  # reading it fails: EISDIR
ELLM_SYSFS_ROOT="$root" run_mpi 1 "$BIN" run "$job" --out "$WORK/estimated" \
  --set metrics.p_idle_w=40 --set metrics.p_max_w=140 >/dev/null
R="$WORK/estimated/report.json"
json_check "$R" 'r["runs"][0]["energy"]["estimated"] is True'
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["sources"] == ["estimate"]'
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["fallbacks"][0]["reason"].endswith("intel-rapl:0/energy_uj: Is a directory")'
json_check "$R" 'r["runs"][0]["nodes"][0]["energy"]["model"]["p_max_w"] == 140'
json_check "$R" '40 <= r["runs"][0]["energy"]["aec_w"] <= 140'
grep -q "rapl not used: .*energy_uj: Is a directory" "$WORK/estimated/report.md" || fail "report.md lacks the fallback reason"

run_mpi 1 "$BIN" run "$job" --out "$WORK/off" --set metrics.sample_period_ms=0 >/dev/null
json_check "$WORK/off/report.json" 'r["runs"][0]["energy"]["joules"] is None and r["runs"][0]["memory"]["sampled"] is False'
json_check "$WORK/off/report.json" 'r["runs"][0]["ranks"][0]["pcu_busy_fraction"] is None'
echo "1 passed, 0 failed"
