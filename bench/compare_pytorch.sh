#!/usr/bin/env bash
# One training step of the reference model (vocab 256, d_model 384, 6 layers, 6 heads, T=256,
# batch 8, fp32, AdamW) or another size: efficientllm vs PyTorch CPU, alternated in one run so
# both see the same machine state. Thread pools are pinned to the same count for both (see
# docs/PERFORMANCE.md); model flags go to both peers identically (d_ff defaults to 4 × d_model in
# both).
#   bench/compare_pytorch.sh [threads=2] [rounds=3] [--d-model 768 --heads 12 ...]
#   model flags: --layers --d-model --heads --d-ff --seq-len --batch   (needs: scripts/setup.sh --bench)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
rounds=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then threads=$1; shift; fi
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
model=("$@")
for ((i = 0; i < ${#model[@]}; i += 2)); do
  case ${model[i]} in
    --layers | --d-model | --heads | --d-ff | --seq-len | --batch) ;;
    *) echo "compare_pytorch.sh: unknown model flag '${model[i]}' (allowed: --layers --d-model --heads --d-ff --seq-len --batch)" >&2
       exit 2 ;;
  esac
  if ! [[ ${model[i + 1]:-} =~ ^[0-9]+$ ]]; then
    echo "compare_pytorch.sh: ${model[i]} needs a positive integer, got '${model[i + 1]:-}'" >&2
    exit 2
  fi
done
for ((i = 1; i <= rounds; i++)); do
  OPENBLAS_NUM_THREADS=$threads build/bench/bench_train_step --steps 10 --warmup 3 "${model[@]}" --json | tail -1
  OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 bench/pytorch_gpt.py --steps 10 --warmup 3 --threads 1 "${model[@]}" --json | tail -1
done | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
tokens, params = {}, {}
for peer in ("efficientllm", "pytorch"):
    r = [x for x in rows if x["peer"] == peer]
    ms = sorted(x["ms_per_step"]["mean"] for x in r)
    tok = sorted(x["tokens_per_s"] for x in r)
    tokens[peer], params[peer] = tok[len(tok) // 2], r[0]["params"]
    print(f"{peer:13s} ms/step (median of {len(r)} rounds) {ms[len(ms)//2]:7.1f}  [{ms[0]:.1f}..{ms[-1]:.1f}]  tokens/s {tokens[peer]:7.0f}  params {params[peer]}")
if params["efficientllm"] != params["pytorch"]:
    sys.exit(f"compare_pytorch.sh: the peers built different models ({params})")
ratio = tokens["efficientllm"] / tokens["pytorch"]
print(f"ratio efficientllm / pytorch tokens/s: {ratio:.2f}x")
'
