# scripts/reproduce.sh end to end on its smoke preset, the MoE study only (6 runs of 4 steps on 2
# ranks): the claim table judges the MoE claims on 3 seeds (not "not run"), the HTML report is
# written; run again it skips the finished study; with the study's completion mark gone it takes
# the directory up with --continue and keeps every finished run. Bad options are refused.
source "$(dirname "$0")/lib/common.sh"
export ELLM_BIN=$BIN
out="$WORK/repro"
bash "$SRC/scripts/reproduce.sh" --preset smoke --studies moe --out "$out" > "$WORK/log1" 2>&1 ||
  { tail -30 "$WORK/log1"; fail "the smoke reproduction failed"; }
[[ -f $out/html/report.html && -f $out/claims.json ]] || fail "no claim table or HTML report"
"$PY" - "$out/claims.json" <<'PY'
import json, re, sys
claims = json.load(open(sys.argv[1]))
moe = [c for c in claims if c["id"].startswith("moe.")]
assert len(moe) >= 2, [c["id"] for c in claims]
for c in moe:
    assert c["verdict"] in ("holds", "does not hold", "inconclusive"), c
    seeds = re.findall(r"\(n=(\d+)\)", c["ours"])  # per group, or per paired ratio
    assert "not run" not in c["reason"] and seeds and set(seeds) == {"3"}, c
others = [c for c in claims if not c["id"].startswith("moe.")]
assert others and all(c["verdict"] == "inconclusive" and "not run" in c["reason"] for c in others), others
PY
bash "$SRC/scripts/reproduce.sh" --preset smoke --studies moe --out "$out" > "$WORK/log2" 2>&1
grep -q "reproduce: moe: complete in $out/moe, skipped" "$WORK/log2" || { cat "$WORK/log2"; fail "a finished study was not skipped"; }
rm "$out/moe/.complete"
bash "$SRC/scripts/reproduce.sh" --preset smoke --studies moe --out "$out" > "$WORK/log3" 2>&1
[[ $(grep -c "finished earlier in $out/moe: kept, not run again" "$WORK/log3") == 6 ]] ||
  { cat "$WORK/log3"; fail "a study taken up again should keep its 6 finished runs"; }
expect_error 2 'reproduce.sh: --preset must be smoke, quick or full, got "fast"' bash "$SRC/scripts/reproduce.sh" --preset fast
expect_error 2 'reproduce.sh: unknown study "moes" (attention, attention_free, moe, peft, bitwidth, context_sweep)' \
  bash "$SRC/scripts/reproduce.sh" --studies moes
echo "e2e.reproduce: OK"
