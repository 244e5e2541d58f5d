# Quantized inference (docs/INFERENCE.md): a model saved by a short pretraining run (400 steps) and served by
# `bench-infer` at every weight format keeps its perplexity within each format's stated bound of
# fp32, with the KL divergence and top-1 agreement that go with it; the report carries every
# metric; `generate` streams the same continuation for the same seed; bad input exits 2 with one
# message naming the field.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job quant 400)
run_mpi 1 "$BIN" run "$job" --out "$WORK/train" --set checkpoint.save=true >/dev/null
trained=(--set model.init_from="$WORK/train/checkpoints/quant")
small=(--set inference.prompt_tokens=16 --set inference.gen_tokens=8 --set inference.repetitions=2)
"$BIN" bench-infer "$job" --out "$WORK/inf" "${trained[@]}" "${small[@]}" \
  --set inference.formats=fp32,bf16,fp16,int8,int4 --set inference.quality_windows=24 >/dev/null

"$PY" - "$WORK/inf/inference.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = {r["format"]: r for r in report["runs"][0]["formats"]}
assert list(rows) == ["fp32", "bf16", "fp16", "int8", "int4"], list(rows)
# Bounds on the perplexity's relative change, the mean KL (nats) and the top-1 agreement.
bounds = {"fp32": (1e-6, 1e-9, 1.0), "bf16": (0.01, 2e-3, 0.97), "fp16": (0.002, 2e-4, 0.99),
          "int8": (0.01, 2e-3, 0.97), "int4": (0.08, 0.04, 0.85)}
fp32 = rows["fp32"]
for name, r in rows.items():
    q = r["quality"]
    print(f"{name}: ppl {q['ppl']:.4f} (fp32 {q['ppl_fp32']:.4f}, {100*q['ppl_delta']:+.3f} %), KL {q['kl_divergence']:.2e}, "
          f"top-1 {q['top1_agreement']:.3f}, weights {r['weight_bytes']['total']} B, MCR {r['mcr']['measured_bytes']:.3f} / {r['mcr']['bit_ratio']:.3f}")
for name, r in rows.items():
    q = r["quality"]
    dppl, kl, top1 = bounds[name]
    assert abs(q["ppl_delta"]) <= dppl, (name, q)
    assert q["kl_divergence"] <= kl, (name, q)
    assert q["top1_agreement"] >= top1, (name, q)
    assert q["ppl_fp32"] < 18, q  # the model learned (a byte unigram model: about 20; 14.9 and 16.8 on two stretches of text)
    for key in ("pp", "tg"):
        assert r[key]["tokens_per_s"]["mean"] > 0 and r[key]["tokens_per_s"]["n"] == 2, r[key]
    assert 0 < r["token_latency_s"]["p50"] <= r["token_latency_s"]["p95"], r["token_latency_s"]
    assert r["time_to_first_token_s"]["mean"] > 0
    assert r["sampling"]["amu"] is None or 0 < r["sampling"]["amu"] < 1, r["sampling"]["amu"]
    # the sampled figures cover the benchmark (the steps window), not the set-up
    assert r["sampling"]["windows"]["steps"]["seconds"] > 0 and r["sampling"]["busy_cores"] is not None, r["sampling"]["windows"]
    assert "energy" in r["sampling"]
# the linear layers shrink as their formats say; the rest stays fp32
lin = {n: r["weight_bytes"]["linear_layers"] for n, r in rows.items()}
assert lin["bf16"] * 2 == lin["fp32"] and lin["fp16"] == lin["bf16"], lin
assert abs(lin["int8"] / lin["fp32"] - 8.5 / 32) < 1e-9 and abs(lin["int4"] / lin["fp32"] - 4.5 / 32) < 1e-9, lin
assert all(r["weight_bytes"]["fp32_rest"] == fp32["weight_bytes"]["fp32_rest"] for r in rows.values())
assert rows["int4"]["mcr"]["bit_ratio"] > 5, rows["int4"]["mcr"]
PY

# generate: the same seed streams the same text, which continues the prompt
gen=(generate "$job" "${trained[@]}" --prompt "The " --max-tokens 24 --temperature 0.8 --top-p 0.9 --seed 5)
a=$("$BIN" "${gen[@]}" 2>/dev/null)
b=$("$BIN" "${gen[@]}" 2>/dev/null)
[[ $a == "$b" ]] || fail "generate: the same seed gave '$a' and '$b'"
[[ $a == "The "* && ${#a} -gt 4 ]] || fail "generate: '$a' does not continue the prompt"

# bad input: one message naming the field, exit 2
expect_error 2 "efficientllm bench-infer: $job: /inference/formats: unknown weight format \"int3\" (allowed: fp32, bf16, fp16, int8, int4, comma-separated)" \
  "$BIN" bench-infer "$job" --set inference.formats=fp32,int3
expect_error 2 "efficientllm bench-infer: $job: /inference/prompt_tokens: 64 exceeds the context, /model/seq_len = 32" \
  "$BIN" bench-infer "$job" --set inference.prompt_tokens=64
expect_error 2 "efficientllm generate: --prompt (32 tokens) + --max-tokens (8) exceed the context, /model/seq_len = 32 in $job" \
  "$BIN" generate "$job" --prompt "0123456789012345678901234567890x" --max-tokens 8
echo "quantized inference: OK"
