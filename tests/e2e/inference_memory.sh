# The memory a format really holds (docs/INFERENCE.md): served at each weight format, a model of
# about 13 MiB of fp32 weights (4 layers of d_model 256, d_ff 1024) gives a resident set sampled
# over the timed tests that falls fp32 > bf16 > int8 > int4, by at least half of what the weight
# bytes say it should (the served layers' fp32 pages are handed back while the copies serve).
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job mem 0)
"$BIN" bench-infer "$job" --out "$WORK/mem" \
  --set model.n_layers=4 --set model.d_model=256 --set model.n_heads=4 --set model.d_ff=1024 --set model.seq_len=64 \
  --set inference.formats=fp32,bf16,int8,int4 --set inference.quality_windows=0 \
  --set inference.prompt_tokens=32 --set inference.gen_tokens=32 --set inference.repetitions=3 \
  --set metrics.sample_period_ms=10 >/dev/null
"$PY" - "$WORK/mem/inference.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["runs"][0]["formats"]
rss = [r["sampling"]["rss_mean_bytes"] for r in rows]
weights = [r["weight_bytes"]["total"] for r in rows]
for r, m, w in zip(rows, rss, weights):
    print(f"{r['format']}: RSS mean {m / 2**20:.2f} MiB (peak {r['sampling']['rss_peak_bytes'] / 2**20:.2f}), "
          f"weights {w / 2**20:.2f} MiB, fp32 released {r['fp32_released_bytes'] / 2**20:.2f} MiB, AMU {r['sampling']['amu']}")
assert weights[0] > 12 * 2**20, weights
assert rows[0]["fp32_released_bytes"] == 0 and all(r["fp32_released_bytes"] > 0.9 * rows[1]["weight_bytes"]["linear_layers"] * 2 for r in rows[1:]), rows
for i in range(3):
    assert rss[i] > rss[i + 1], (rows[i]["format"], rss[i], rows[i + 1]["format"], rss[i + 1])
    assert rss[i] - rss[i + 1] >= 0.5 * (weights[i] - weights[i + 1]), (rows[i]["format"], rss, weights)
amu = [r["sampling"]["amu"] for r in rows]
assert None in amu or amu == sorted(amu, reverse=True), amu
PY
echo "inference memory: OK"
