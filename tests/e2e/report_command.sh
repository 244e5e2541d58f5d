# `efficientllm report`: one directory re-rendered in each format (the same report.md and
# report.csv the job wrote), several side by side with every run, its report's world size and
# hosts, and ratios against the first; bad input exits 2 with one message.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job cmp 4)
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["runs"] = [{"name": "a"}, {"name": "b", "model": {"n_layers": 1}}]
json.dump(j, open(sys.argv[1], "w"))
PY
run_mpi 1 "$BIN" run "$job" --out "$WORK/one" --set parallel.dp=1 >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/two" --set parallel.dp=2 >/dev/null

"$BIN" report "$WORK/one" > "$WORK/one.md"
cmp -s "$WORK/one.md" "$WORK/one/report.md" || fail "report DIR differs from report.md"
"$BIN" report "$WORK/one" --format csv > "$WORK/one.csv"
cmp -s "$WORK/one.csv" "$WORK/one/report.csv" || fail "report --format csv differs from report.csv"
"$BIN" report "$WORK/two" --format json > "$WORK/two.json"
json_check "$WORK/two.json" 'r["world"]["ranks"] == 2 and len(r["runs"]) == 2'
/usr/bin/python3 "$SRC/scripts/validate_report.py" "$WORK/two.json" || fail "re-rendered JSON does not validate"
# report.csv: a run row, a node row and one row per rank for each run.
[[ $(grep -c '^run,' "$WORK/two/report.csv") == 2 && $(grep -c '^rank,' "$WORK/two/report.csv") == 4 ]] ||
  fail "report.csv rows"

"$BIN" report "$WORK/one" "$WORK/two" --format json > "$WORK/side.json"
/usr/bin/python3 "$SRC/scripts/validate_report.py" "$WORK/side.json" || fail "the comparison does not validate"
json_check "$WORK/side.json" '[(x["world_ranks"], x["run"]) for x in r["comparison"]["rows"]] == [(1, "a"), (1, "b"), (2, "a"), (2, "b")]'
json_check "$WORK/side.json" 'r["comparison"]["rows"][3]["baseline"].endswith("/one:b") and r["comparison"]["rows"][1]["ratios"]["tokens_per_s"] == 1'
"$BIN" report "$WORK/one" "$WORK/two" > "$WORK/side.md"
grep -q "^| $WORK/two | 2 | $(hostname) | b |" "$WORK/side.md" || fail "side-by-side table lacks a row"
[[ $("$BIN" report "$WORK/one" "$WORK/two" --format csv | wc -l) == 5 ]] || fail "side-by-side CSV rows"

expect_error 2 "efficientllm report: $WORK/nope/report.json: cannot read (is $WORK/nope an efficientllm output directory?)" \
  "$BIN" report "$WORK/nope"
expect_error 2 'efficientllm report: --format: must be one of "md", "csv", "json"; got "xml"' \
  "$BIN" report "$WORK/one" --format xml
echo '{"schema_version": 1}' > "$WORK/old.json" && mkdir -p "$WORK/old" && mv "$WORK/old.json" "$WORK/old/report.json"
expect_error 2 "efficientllm report: $WORK/old/report.json: /schema_version: must be 3, got 1" "$BIN" report "$WORK/old"
expect_error 2 'efficientllm report: --scaling: must be "strong" or "weak"; got "sideways"' \
  "$BIN" report "$WORK/one" --scaling sideways --out "$WORK/s"
expect_error 2 "efficientllm report: --scaling and --out go together" "$BIN" report "$WORK/one" --scaling strong
echo "1 passed, 0 failed"
