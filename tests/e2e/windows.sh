# One time window per figure (docs/METRICS.md, "Windows"): two runs on dp = 2 that differ only in
# a long evaluation (400 batches, 4 times) and checkpoint saves in the second. AMU, PCU, AEC and
# J/token cover the measured steps only: each run's steps window lasts as long as its measured
# steps (the evaluation would make it several times longer if it leaked in), J/token is that
# window's energy ÷ the tokens of those steps, the windows add up to the whole run, and the steps
# window's J/token does not follow the evaluation while the whole run's does. An evaluation-only
# run's steps window is its measured evaluation batches.
source "$(dirname "$0")/lib/common.sh"
job="$WORK/windows.json"
cat > "$job" <<JSON
{
  "name": "windows",
  "defaults": {
    "model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "seq_len": 32},
    "training": {"steps": 40, "batch_size": 8, "warmup_steps": 2, "warmup_iters": 2, "eval_every": 10,
                 "eval_batches": 1},
    "metrics": {"sample_period_ms": 50},
    "data": {"corpus": ["$(corpus)"]}
  },
  "runs": [
    {"name": "short_eval"},
    {"name": "long_eval", "training": {"eval_batches": 400}, "checkpoint": {"save": true, "every": 20}}
  ]
}
JSON
run_mpi 2 "$BIN" run "$job" --out "$WORK/out" --set parallel.dp=2 >/dev/null
run_mpi 1 "$BIN" run "$(tiny_job evalonly 0)" --out "$WORK/evalonly" --set training.eval_batches=6 \
  --set training.warmup_iters=2 --set metrics.sample_period_ms=50 >/dev/null
grep -q "J over .* s of measured steps" "$WORK/out/report.md" || fail "report.md does not state the energy's window"
"$PY" - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
runs = {r["name"]: r for r in json.load(open(f"{work}/out/report.json"))["runs"]}
names = ["setup", "warmup", "steps", "evaluation", "checkpoint", "finish"]
tokens_per_step = 8 * 32
def fail(msg):
    sys.exit("FAIL: " + msg)
def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)
per_token = {}
for name, r in runs.items():
    w, e = r["windows"], r["energy"]
    assert sorted(w) == sorted(names), w.keys()
    # The steps window holds the measured steps and nothing else: its length is their summed time
    # (per iteration the slowest rank) plus the small per-step bookkeeping between them.
    stepped = r["latency"]["step"]["mean"] * r["latency"]["step"]["count"]
    if not (stepped <= w["steps"]["seconds"] * 1.05 + 0.02 and w["steps"]["seconds"] <= 1.25 * stepped + 0.25):
        fail(f"{name}: steps window {w['steps']['seconds']:.3f} s, measured steps {stepped:.3f} s")
    if not w["warmup"]["seconds"] > 0 or not w["setup"]["seconds"] > 0 or not w["evaluation"]["seconds"] > 0:
        fail(f"{name}: an empty window: {w}")
    measured = r["latency"]["measured_iters"]
    assert measured == 38, measured
    # J/token = the steps window's energy ÷ the tokens of the measured steps
    assert close(e["joules"], w["steps"]["joules"]), (e["joules"], w["steps"]["joules"])
    assert close(e["j_per_token"], e["joules"] / (measured * tokens_per_step)), e
    for node in r["nodes"]:
        ne = node["energy"]
        assert ne["window"] == "steps" and close(ne["seconds"], ne["windows"]["steps"]["seconds"]), ne
        total = sum(ne["windows"][n]["joules"] for n in names)
        assert close(total, ne["whole_run"]["joules"], 1e-6), (total, ne["whole_run"])
        assert close(sum(ne["windows"][n]["seconds"] for n in names), ne["whole_run"]["seconds"], 1e-6)
    # the headline AMU and PCU are the steps window's
    rank0 = r["ranks"][0]["memory"]
    assert rank0["amu"] is not None and r["memory"]["amu"]["max"] <= 1
    whole = sum(node["energy"]["whole_run"]["joules"] for node in r["nodes"])
    # per second of step time: the step speed of two runs on a shared machine differs by more
    # than the evaluation's effect could be seen through, the power much less
    step_mean = r["latency"]["step"]["mean"]
    per_token[name] = (e["j_per_token"] / step_mean, whole / (measured * tokens_per_step) / step_mean)
short, long = runs["short_eval"]["windows"], runs["long_eval"]["windows"]
if not long["evaluation"]["seconds"] > 2 * long["steps"]["seconds"]:
    fail(f"the long evaluation ({long['evaluation']['seconds']:.2f} s) is not longer than the steps ({long['steps']['seconds']:.2f} s)")
if not long["evaluation"]["seconds"] > 5 * short["evaluation"]["seconds"]:
    fail(f"evaluation windows {short['evaluation']['seconds']:.2f} s vs {long['evaluation']['seconds']:.2f} s")
assert short["checkpoint"]["seconds"] == 0 and long["checkpoint"]["seconds"] > 0, (short["checkpoint"], long["checkpoint"])
# The steps window's J/token (per second of step time) does not follow the evaluation, within
# the noise of a shared machine; the whole run's, which the report used to give, does.
steps_ratio = per_token["long_eval"][0] / per_token["short_eval"][0]
whole_ratio = per_token["long_eval"][1] / per_token["short_eval"][1]
print(f"J/token per step-second, long/short: steps window {steps_ratio:.2f}, whole run {whole_ratio:.2f}")
if not 0.6 < steps_ratio < 1.67:
    fail(f"steps-window J/token changed with the evaluation: ×{steps_ratio:.2f}")
if not whole_ratio > 2 * steps_ratio:
    fail(f"the whole run's J/token did not grow with the evaluation (×{whole_ratio:.2f}): the test is not sensitive")
# An evaluation-only run: the steps window is its measured evaluation batches (6 − 2 warm-up).
r = json.load(open(f"{work}/evalonly/report.json"))["runs"][0]
w = r["windows"]
stepped = r["latency"]["step"]["mean"] * r["latency"]["step"]["count"]
assert r["latency"]["measured_iters"] == 4 and w["evaluation"]["seconds"] == 0, (r["latency"], w)
if not (stepped <= w["steps"]["seconds"] * 1.05 + 0.02 and w["steps"]["seconds"] <= 1.25 * stepped + 0.25):
    fail(f"evaluation-only: steps window {w['steps']['seconds']:.3f} s, measured batches {stepped:.3f} s")
assert abs(r["energy"]["j_per_token"] - r["energy"]["joules"] / (4 * tokens_per_step)) <= 1e-9 * r["energy"]["j_per_token"]
PY
echo "1 passed, 0 failed"
