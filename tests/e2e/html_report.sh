# scripts/html_report.py: a study of 2 configurations x 3 seeds rendered to a self-contained
# report.html with the claim table, checked in headless Chromium (Debian's chromium): it renders
# with no script error, the DOM holds the plots and tables, and the first screen's screenshot is
# kept as the test's artefact (BUILD/test-artifacts/html_report_first_screen.png).
source "$(dirname "$0")/lib/common.sh"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/setup.sh installs it)"
job=$(tiny_job attention 12)  # attention.json: the claims file names its study by the job file's name
"$PY" - "$job" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["defaults"]["training"]["eval_every"] = 6
j["runs"] = [{"name": "mha"}, {"name": "mqa", "model": {"n_kv_heads": 1}}]
j["grid"] = {"training.seed": [1, 2, 3]}
json.dump(j, open(sys.argv[1], "w"))
PY
OPENBLAS_NUM_THREADS=1 "$BIN" run "$job" --out "$WORK/study" >/dev/null
/usr/bin/python3 "$SRC/scripts/html_report.py" --out "$WORK/html" --claims "$SRC/jobs/paper/claims.json" \
  --bin "$BIN" "$WORK/study" >/dev/null
html="$WORK/html/report.html"
[[ -s $html ]] || fail "no report.html"
for f in attention_loss attention_memory attention_metric0 attention_metric1; do
  [[ -s $WORK/html/plots/$f.svg && -s $WORK/html/plots/$f.png ]] || fail "plot $f missing"
done
# Self-contained: no external scripts, style sheets or images (SVG's xmlns URIs are names, not fetches).
if grep -q '<script src=\|<link \|<img src="http\|url(http' "$html"; then fail "report.html loads something from the network"; fi

browse() {  # chromium, headless, sandbox off (tests run as root), its own profile
  timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile" \
    --enable-logging=stderr --v=0 --window-size=1280,900 "$@" "file://$html"
}
browse --dump-dom > "$WORK/dom.html" 2> "$WORK/console.txt" || fail "chromium could not render the report"
if grep -i 'Uncaught\|SyntaxError\|ReferenceError\|TypeError' "$WORK/console.txt"; then fail "script errors in report.html"; fi
[[ $(grep -o '<svg' "$WORK/dom.html" | wc -l) -ge 6 ]] || fail "fewer than 6 plots in the rendered page"
grep -q "The paper's claims" "$WORK/dom.html" || fail "no claim table"
grep -q 'MQA needs the least memory' "$WORK/dom.html" || fail "the claim table lacks the attention claims"
grep -q '<td>mqa,seed=3</td>' "$WORK/dom.html" || fail "the runs table lacks a run"

artifacts="$(dirname "$BIN")/test-artifacts"
mkdir -p "$artifacts"
browse --screenshot="$artifacts/html_report_first_screen.png" >/dev/null 2>&1 || fail "no screenshot"
[[ -s $artifacts/html_report_first_screen.png ]] || fail "empty screenshot"
echo "html_report: ok (screenshot: $artifacts/html_report_first_screen.png)"
