# Data-parallel equivalence: the same job and global batch on 1 and on 2 ranks gives the same
# loss and gradient norm at every step and the same final parameters within float tolerance
# (lib/equivalence.py), and the 2 replicas end with bit-identical parameters.
# Determinism: the same job and seed twice gives bit-identical losses and parameters.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job dpeq 20)
run_mpi 1 "$BIN" run "$job" --out "$WORK/dp1" --set parallel.dp=1 >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/dp2" --set parallel.dp=2 >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/dp2again" --set parallel.dp=2 >/dev/null
"$PY" "$(dirname "$0")/lib/equivalence.py" "$WORK/dp1/report.json" "$WORK/dp2/report.json"
"$PY" - "$WORK/dp1/report.json" "$WORK/dp2/report.json" "$WORK/dp2again/report.json" <<'PY'
import json, sys
a, b, c = (json.load(open(p))["runs"][0] for p in sys.argv[1:4])
assert b["loss_per_step"] == c["loss_per_step"], "the same seed gave different losses"
assert b["ranks"][0]["param_fingerprint"] == c["ranks"][0]["param_fingerprint"]
la, lb = a["loss_per_step"], b["loss_per_step"]
assert len(la) == len(lb) == 20, (len(la), len(lb))
worst = max(abs(x - y) / abs(x) for x, y in zip(la, lb))
print(f"max relative loss difference dp1 vs dp2 over 20 steps: {worst:.2e}")
assert worst < 1e-4, worst
assert la[-1] < la[0] - 1.0, "the loss did not fall"
assert b["replicas_identical"] is True
assert len({r["param_fingerprint"] for r in b["ranks"]}) == 1
assert abs(a["quality"]["val_loss_final"] - b["quality"]["val_loss_final"]) < 1e-3
PY
echo "1 passed, 0 failed"
