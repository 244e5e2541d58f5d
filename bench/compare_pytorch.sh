#!/usr/bin/env bash
# One training step of the reference model (vocab 256, d_model 384, 6 layers, 6 heads, T=256,
# batch 8, fp32, AdamW): efficientllm vs PyTorch CPU, alternated in one run so both see the same
# machine state. Thread pools are pinned to the same count for both (see docs/PERFORMANCE.md).
#   bench/compare_pytorch.sh [threads=2] [rounds=3]      (needs: scripts/setup.sh --bench)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
rounds=${2:-3}
for ((i = 1; i <= rounds; i++)); do
  OPENBLAS_NUM_THREADS=$threads build/bench/bench_train_step --steps 10 --warmup 3 --json | tail -1
  OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 bench/pytorch_gpt.py --steps 10 --warmup 3 --threads 1 --json | tail -1
done | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
for peer in ("efficientllm", "pytorch"):
    r = [x for x in rows if x["peer"] == peer]
    ms = sorted(x["ms_per_step"]["mean"] for x in r)
    tok = sorted(x["tokens_per_s"] for x in r)
    print(f"{peer:13s} ms/step (median of {len(r)} rounds) {ms[len(ms)//2]:7.1f}  [{ms[0]:.1f}..{ms[-1]:.1f}]  tokens/s {tok[len(tok)//2]:7.0f}")
'
