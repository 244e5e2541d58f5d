# Shared by the end-to-end tests: each test is `bash tests/e2e/NAME.sh BINARY SOURCE_DIR`.
set -euo pipefail
BIN=${1:?usage: $0 EFFICIENTLLM_BINARY SOURCE_DIR}
SRC=${2:?usage: $0 EFFICIENTLLM_BINARY SOURCE_DIR}
WORK=$(mktemp -d)
# Every report a test produced (report.json and the runs.jsonl beside it, in a directory the
# writer made: it holds report.md too; bench-infer's inference.json beside its inference.md) is
# checked against docs/report.schema.json (inference.json: docs/inference.schema.json) before the
# work directory goes; a report that does not match fails the test.
validate_reports_and_clean() {
  local code=$? report
  while IFS= read -r -d '' report; do
    local md=${report%.json}.md
    [[ -f $md ]] || continue  # e.g. a job file named report.json
    local files=("$report")
    [[ -f ${report%/*}/runs.jsonl ]] && files+=("${report%/*}/runs.jsonl")
    /usr/bin/python3 "$SRC/scripts/validate_report.py" "${files[@]}" >&2 ||
      { echo "FAIL: $report does not match its schema (docs/*.schema.json)" >&2; code=1; }
  done < <(find "$WORK" \( -name report.json -o -name inference.json \) -print0 2>/dev/null)
  rm -rf "$WORK"
  exit "$code"
}
trap validate_reports_and_clean EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=$(command -v python3)

fail() { echo "FAIL: $*" >&2; exit 1; }

# mpirun with a time limit: a hang is a failure, not a stuck CI (longer under a sanitizer:
# ELLM_TEST_TIME_SCALE, tests/CMakeLists.txt).
run_mpi() {
  local np=$1; shift
  timeout $((300 * ${ELLM_TEST_TIME_SCALE:-1})) mpirun -np "$np" --oversubscribe --bind-to none "$@"
}

# A small corpus of real English text (Debian's fortunes), copied so tests never depend on
# what else is in that directory.
corpus() {
  cat /usr/share/games/fortunes/fortunes /usr/share/games/fortunes/literature > "$WORK/corpus.txt"
  echo "$WORK/corpus.txt"
}

# tiny_job NAME STEPS: a job small enough for a few seconds of training.
tiny_job() {
  local name=$1 steps=$2 file="$WORK/$1.json"
  cat > "$file" <<JSON
{
  "name": "$name",
  "defaults": {
    "model": {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 128, "seq_len": 32},
    "training": {"steps": $steps, "batch_size": 8, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 3,
                 "eval_every": 0, "eval_batches": 2, "warmup_iters": 1, "log_every": 5},
    "data": {"corpus": ["$(corpus)"]}
  }
}
JSON
  echo "$file"
}

# expect_error EXPECTED_EXIT EXPECTED_STDERR_LINE COMMAND...: the command fails with that exit
# code and prints exactly that line (among others, e.g. usage) on stderr.
expect_error() {
  local want_code=$1 want_line=$2; shift 2
  local code=0
  "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
  [[ $code == "$want_code" ]] || { cat "$WORK/err" >&2; fail "exit $code, wanted $want_code: $*"; }
  grep -qxF -- "$want_line" "$WORK/err" || { cat "$WORK/err" >&2; fail "missing line: $want_line"; }
  local count
  count=$(grep -cxF -- "$want_line" "$WORK/err")
  [[ $count == 1 ]] || fail "the message appears $count times (once per rank?): $want_line"
}

# json_check FILE PYTHON_EXPRESSION: asserts the expression over `r` (the parsed JSON) is true.
json_check() {
  "$PY" - "$1" "$2" <<'PY' || fail "check failed on $1: $2"
import json, math, sys
r = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)
PY
}
