# `efficientllm estimate` and run's memory check (docs/ESTIMATE.md):
# (1) the text and --json forms, --ranks, and bad input (the validator's message, exit 2);
# (2) estimate against measurement across model kinds (dense MHA and GQA, MoE, Mamba, RWKV-6, a LoRA
#     fine-tune) and layouts (1×1, 2×1, 1×2 dp × tp; MoE 1×1, 2×1, and 2×1 with ep = 2, as it needs tp = 1): every part
#     equals the arena the run allocated (report ranks[].arena_bytes), the CLI's arenas equal the
#     run's, and the total is within 10 % of the rank's sampled peak resident memory;
# (3) run refuses, before any run, a job whose estimate exceeds the memory a rank has on a fake
#     machine ($ELLM_SYSFS_ROOT with a small MemTotal), once and on every rank alike; --force-memory runs it.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job estimate 4)

# (1) Text, --json and --ranks.
"$BIN" estimate "$job" > "$WORK/text" || fail "estimate failed"
grep -q "ESTIMATES from the model's declarations" "$WORK/text" || fail "the text is not labelled an estimate"
grep -qE '^  step time +[0-9.e+-]+ s  \(ESTIMATE' "$WORK/text" || { cat "$WORK/text"; fail "no step-time estimate"; }
grep -qE '^    rank 0 ' "$WORK/text" || { cat "$WORK/text"; fail "no memory row for rank 0"; }
"$BIN" estimate "$job" --ranks 4 --set parallel.tp=2 --json > "$WORK/est.json" || fail "estimate --json failed"
"$PY" "$SRC/scripts/validate_report.py" "$WORK/est.json" || fail "estimate --json does not match docs/estimate.schema.json"
json_check "$WORK/est.json" 'r["estimate"] is True and len(r["runs"]) == 1 and r["runs"][0]["layout"]["dp"] == 2'
json_check "$WORK/est.json" '[k["rank"] for k in r["runs"][0]["ranks"]] == [0, 1, 2, 3] and [k["tp_rank"] for k in r["runs"][0]["ranks"]] == [0, 1, 0, 1]'
json_check "$WORK/est.json" 'all(abs(k["memory_bytes"]["total"] - sum(v for p, v in k["memory_bytes"].items() if p not in ("total", "arenas"))) < 1 for k in r["runs"][0]["ranks"])'
json_check "$WORK/est.json" 'r["runs"][0]["kv_cache"]["training_bytes"] is None and r["runs"][0]["params"]["total"] > 0 and r["runs"][0]["flops_per_step"] > 0'
"$BIN" estimate "$job" --rate 10 --json > "$WORK/rate.json"
json_check "$WORK/rate.json" 'abs(r["runs"][0]["step_seconds_estimate"] - r["runs"][0]["flops_per_step"] / 1e10) < 1e-12'
"$BIN" estimate "$job" --measure-peak --json > "$WORK/rate.json"
json_check "$WORK/rate.json" 'r["runs"][0]["rate"]["source"].startswith("measured sgemm peak") and r["runs"][0]["step_seconds_estimate"] > 0'
expect_error 2 "efficientllm estimate: --rate and --measure-peak: choose one rate" "$BIN" estimate "$job" --rate 1 --measure-peak

# Bad input: the validator's own message, exit 2.
"$BIN" validate "$job" --set model.n_heads=3 2> "$WORK/validator" >/dev/null && fail "validate accepted n_heads = 3"
expect_error 2 "$(head -1 "$WORK/validator")" "$BIN" estimate "$job" --set model.n_heads=3
"$BIN" validate "$job" --set parallel.dp=16 2> "$WORK/validator" >/dev/null && fail "validate accepted dp = 16"
expect_error 2 "$(head -1 "$WORK/validator")" "$BIN" estimate "$job" --ranks 16
expect_error 2 "efficientllm: $job: --ranks 3: run \"estimate\" has parallel.tp = 2, which does not divide it" \
  "$BIN" estimate "$job" --ranks 3 --set parallel.tp=2
echo '{"name": "broken", "defaults": {"training": {"stepz": 1}}}' > "$WORK/broken.json"
"$BIN" validate "$WORK/broken.json" 2> "$WORK/validator" >/dev/null && fail "validate accepted a misspelt field"
expect_error 2 "$(head -1 "$WORK/validator")" "$BIN" estimate "$WORK/broken.json"

# (2) Estimate against measurement, one run per job: a process keeps the heap an earlier run freed
# (glibc), so only a job's first run has a peak of its own. A model big enough that its arenas are
# a good share of a rank's memory.
kinds=(mha gqa mamba rwkv6 lora moe)
"$PY" - "$job" "$WORK" "${kinds[@]}" <<'PY'
import copy, json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["model"].update({"n_layers": 4, "d_model": 256, "n_heads": 4, "d_ff": 1024, "seq_len": 64})
j["defaults"]["metrics"] = {"sample_period_ms": 5}
runs = {
    "mha": {},
    "gqa": {"model": {"n_kv_heads": 2, "norm": "rmsnorm", "positions": "rope", "activation": "swiglu"}},
    "mamba": {"model": {"token_mixer": "mamba", "positions": "none"}},
    "rwkv6": {"model": {"token_mixer": "rwkv6", "rwkv_head_size": 32}},
    "lora": {"finetune": {"method": "lora", "rank": 8, "alpha": 16, "target_modules": ["all"]}},
    "moe": {"model": {"mlp": "moe", "moe_experts": 4, "moe_top_k": 2, "moe_d_ff": 256}},
}
for name in sys.argv[3:]:
    one = copy.deepcopy(j)
    one["runs"] = [dict(name=name, **runs[name])]
    json.dump(one, open(f"{sys.argv[2]}/{name}.json", "w"))
PY
compare() {  # REPORT ESTIMATE_JSON: parts equal, totals within 10 %
  "$PY" - "$1" "$2" <<'PY' || fail "estimate and measurement differ: $1"
import json, sys
report, cli = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
worst = 0
for run, est in zip(report["runs"], cli["runs"]):
    assert run["name"] == est["name"]
    for k, c in zip(run["ranks"], est["ranks"]):
        e, a = k["memory_estimate"], k["arena_bytes"]
        pairs = [(e["weights"], a["parameters"]), (e["gradients"], a["gradients"]), (e["optimizer"], a["optimizer"]),
                 (e["activations"] + e["workspaces"], a["activations"]), (c["memory_bytes"]["arenas"], e["arenas"])]
        assert all(x == y for x, y in pairs), (run["name"], k["rank"], pairs)
        measured = k["memory"]["rss_peak_bytes"]
        ratio = e["total"] / measured
        worst = max(worst, abs(ratio - 1))
        print(f'{run["name"]:6} rank {k["rank"]}: estimate {e["total"] / 2**20:7.2f} MiB (arenas {e["arenas"] / 2**20:6.2f}, '
              f'communication {e["communication"] / 2**20:5.2f}, runtime {e["runtime"] / 2**20:5.2f}), '
              f'sampled peak RSS {measured / 2**20:7.2f} MiB, ratio {ratio:.3f}')
        assert abs(ratio - 1) <= 0.10, (run["name"], k["rank"], ratio)
print(f"largest difference {worst:.1%}")
PY
}
measure() {  # KIND DP TP EP
  local out="$WORK/$1-$2-$3-$4" sets=(--set parallel.dp="$2" --set parallel.tp="$3" --set parallel.ep="$4")
  run_mpi $(($2 * $3)) "$BIN" run "$WORK/$1.json" --out "$out" "${sets[@]}" >/dev/null 2>"$WORK/err" ||
    { cat "$WORK/err"; fail "$1 failed at dp=$2 tp=$3 ep=$4"; }
  "$BIN" estimate "$WORK/$1.json" "${sets[@]}" --json > "$WORK/est.json"
  "$PY" "$SRC/scripts/validate_report.py" "$WORK/est.json" || fail "estimate --json of $1 does not match its schema"
  echo "dp=$2 tp=$3 ep=$4:"; compare "$out/report.json" "$WORK/est.json"
}
for kind in "${kinds[@]}"; do
  if [[ $kind == moe ]]; then  # MoE needs tp = 1: its layouts are dp, and dp with expert parallelism
    measure moe 1 1 1; measure moe 2 1 1; measure moe 2 1 2
    continue
  fi
  for layout in "1 1" "2 1" "1 2"; do measure "$kind" $layout 1; done
done

# (3) A machine of 1.6 × one rank's estimated total (its MemTotal): one rank fits, but two ranks
# share it and do not.
root="$WORK/root"
mkdir -p "$root/proc"
cp /proc/cpuinfo /proc/stat "$root/proc/"
"$BIN" estimate "$job" --json > "$WORK/one.json"
kib=$("$PY" -c 'import json, sys; print(int(1.6 * json.load(open(sys.argv[1]))["runs"][0]["ranks"][0]["memory_bytes"]["total"] / 1024))' "$WORK/one.json")
echo "MemTotal:       $kib kB" > "$root/proc/meminfo"
ELLM_SYSFS_ROOT="$root" run_mpi 1 "$BIN" run "$job" --out "$WORK/fits" >/dev/null 2>"$WORK/err" ||
  { cat "$WORK/err"; fail "a run that fits was refused"; }
code=0
ELLM_SYSFS_ROOT="$root" run_mpi 2 "$BIN" run "$job" --out "$WORK/refused" --set parallel.dp=2 >/dev/null 2>"$WORK/err" || code=$?
[[ $code == 2 ]] || { cat "$WORK/err"; fail "exit $code, wanted 2, for a run that does not fit"; }
pattern="^efficientllm: $job: run \"estimate\" needs about [0-9.]+ MiB on rank [01] \(estimate: weights [0-9.]+, gradients [0-9.]+, optimizer [0-9.]+, activations [0-9.]+, workspaces [0-9.]+, communication [0-9.]+, data [0-9.]+, runtime [0-9.]+ MiB\) and [0-9.]+ MiB is available to a rank \(/proc/meminfo MemTotal ÷ 2 rank\(s\) on the node\); .* or pass --force-memory to run anyway$"
[[ $(grep -cE "$pattern" "$WORK/err") == 1 ]] || { cat "$WORK/err"; fail "not one clear refusal message"; }
grep -m1 -E "$pattern" "$WORK/err"
[[ ! -e $WORK/refused ]] || fail "a refused job left $WORK/refused"
ELLM_SYSFS_ROOT="$root" run_mpi 2 "$BIN" run "$job" --out "$WORK/forced" --set parallel.dp=2 --force-memory >/dev/null 2>"$WORK/err" ||
  { cat "$WORK/err"; fail "--force-memory did not run the job"; }
json_check "$WORK/forced/report.json" 'r["runs"][0]["status"] == "ok" and len(r["runs"][0]["ranks"]) == 2'
[[ $(grep -c "^efficientllm: warning: run \"estimate\" needs about .* (--force-memory: running it)$" "$WORK/err") == 1 ]] ||
  { cat "$WORK/err"; fail "--force-memory did not warn once"; }
echo "1 passed, 0 failed"
