#!/usr/bin/env bash
# One command re-runs the EfficientLLM paper's study (jobs/paper/*.json) with seeds, judges every
# claim of jobs/paper/claims.json and writes the claim table and report.html (docs/REPRODUCE.md):
#
#   scripts/reproduce.sh [--preset smoke|quick|full] [--out DIR] [--np N] [--seeds N]
#                        [--studies attention,attention_free,moe,peft,bitwidth,context_sweep]
#
# Resumable: run it again with the same --out. A finished study is skipped; one stopped part-way
# (a time limit, a signal, a crash) continues with `efficientllm run --continue`, which keeps the
# runs that finished. Needs the built binary (build/efficientllm, or $ELLM_BIN) and mpirun.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ELLM_BIN:-$root/build/efficientllm}
preset=quick np=2 seeds=3 out="" studies=attention,attention_free,moe,peft,bitwidth

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case "$1" in
    --preset) preset=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --np) np=${2:?}; shift 2 ;;
    --seeds) seeds=${2:?}; shift 2 ;;
    --studies) studies=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "reproduce.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ $preset =~ ^(smoke|quick|full)$ ]] || { echo "reproduce.sh: --preset must be smoke, quick or full, got \"$preset\"" >&2; exit 2; }
[[ $np =~ ^[1-9][0-9]*$ ]] || { echo "reproduce.sh: --np must be a positive integer, got \"$np\"" >&2; exit 2; }
[[ $seeds =~ ^[1-9][0-9]*$ ]] || { echo "reproduce.sh: --seeds must be a positive integer, got \"$seeds\"" >&2; exit 2; }
((seeds >= 3)) || echo "reproduce.sh: warning: with $seeds seed(s) every claim is inconclusive (verdicts need >= 3)" >&2
[[ -x $bin ]] || { echo "reproduce.sh: $bin is not built (scripts/setup.sh, or set ELLM_BIN)" >&2; exit 2; }
IFS=, read -ra chosen <<< "$studies"
for s in "${chosen[@]}"; do
  [[ -f $root/jobs/paper/$s.json && $s != claims && $s != peft_base ]] ||
    { echo "reproduce.sh: unknown study \"$s\" (attention, attention_free, moe, peft, bitwidth, context_sweep)" >&2; exit 2; }
done
out=$(realpath -m "${out:-results/reproduce-$preset}")
mkdir -p "$out"
seed_list=$(seq -s, 1 "$seeds")

# The preset's --set arguments for a study. smoke: a few steps, to test the pipeline; quick: about
# a third of each study's steps (fewer tokens than the paper's setup, see docs/REPRODUCE.md for
# the time it takes); full: the job files as written.
preset_sets() {
  local study=$1
  case "$preset" in
    full) ;;
    smoke)
      echo --set training.steps=4 --set training.warmup_steps=1 --set training.eval_every=0 \
        --set training.eval_batches=1 --set training.warmup_iters=1 --set training.log_every=2
      [[ $study == bitwidth ]] && echo --set inference.prompt_tokens=16 --set inference.gen_tokens=4 \
        --set inference.repetitions=1 --set inference.warmup=0 --set inference.quality_windows=1
      ;;
    quick)
      case "$study" in
        attention|attention_free) echo --set training.steps=70 --set training.warmup_steps=10 --set training.eval_every=35 ;;
        moe) echo --set training.steps=80 --set training.warmup_steps=10 --set training.eval_every=40 ;;
        peft_base) echo --set training.steps=150 --set training.warmup_steps=15 ;;
        peft) echo --set training.steps=50 --set training.warmup_steps=5 ;;
        bitwidth) echo --set training.steps=60 --set training.warmup_steps=6 --set training.eval_every=30 ;;
        context_sweep) ;;
      esac
      ;;
  esac
}

# run_study STUDY RANKS [efficientllm run arguments...]: the study's job into $out/STUDY, once.
run_study() {
  local study=$1 dir=$out/$1 ranks=$2; shift 2
  if [[ -f $dir/.complete ]]; then
    echo "reproduce: $study: complete in $dir, skipped" >&2
    return
  fi
  local again=()
  [[ -f $dir/runs.jsonl ]] && again=(--continue) && echo "reproduce: $study: continuing in $dir" >&2
  echo "reproduce: $study ($preset preset) -> $dir" >&2
  # shellcheck disable=SC2046  # preset_sets prints words meant to split
  local launch=(mpirun -np "$ranks")
  ((ranks > $(nproc))) && launch+=(--oversubscribe)
  "${launch[@]}" "$bin" run "$root/jobs/paper/$study.json" --out "$dir" "${again[@]}" \
    --set parallel.dp="$ranks" $(preset_sets "$study") "$@"
  touch "$dir/.complete"
}

reports=()
for study in "${chosen[@]}"; do
  case "$study" in
    peft)  # the base model first (one seed), then the seven methods from its checkpoint
      run_study peft_base "$np" --set checkpoint.dir="$out/peft_base/checkpoints"
      run_study peft "$np" --grid training.seed="$seed_list" --set model.init_from="$out/peft_base/checkpoints/base"
      ;;
    bitwidth)  # each seed's model trained and saved, then served at every bit width (one rank)
      run_study bitwidth "$np" --grid training.seed="$seed_list"
      if [[ ! -f $out/bitwidth-infer/.complete ]]; then
        rm -rf "$out/bitwidth-infer"
        # shellcheck disable=SC2046
        "$bin" bench-infer "$root/jobs/paper/bitwidth.json" --from-run "$out/bitwidth" --out "$out/bitwidth-infer" \
          --grid training.seed="$seed_list" $(preset_sets bitwidth)
        touch "$out/bitwidth-infer/.complete"
      fi
      ;;
    context_sweep) run_study context_sweep 1 ;;  # one sequence per step: one rank
    *) run_study "$study" "$np" --grid training.seed="$seed_list" ;;
  esac
  [[ $study == bitwidth || $study == context_sweep ]] || reports+=("$out/$study")
done

# The claim table (Markdown and JSON) and the HTML report over every study that ran.
if ((${#reports[@]} == 0)); then
  echo "reproduce: no training study chosen: no claim table (bit-width results: $out/bitwidth-infer)" >&2
  exit 0
fi
"$bin" report --claims "$root/jobs/paper/claims.json" "${reports[@]}" > "$out/claims.md"
"$bin" report --claims "$root/jobs/paper/claims.json" "${reports[@]}" --format json > "$out/claims.json"
/usr/bin/python3 "$root/scripts/html_report.py" --out "$out/html" --claims "$root/jobs/paper/claims.json" "${reports[@]}"
echo "reproduce: claim table $out/claims.md; report $out/html/report.html" >&2
