# SentencePiece end to end (docs/DATA.md): `efficientllm tokenizer train` on a corpus, a run
# tokenizing on the fly, the same run on the corpus pre-tokenized by `efficientllm tokenize`
# (identical losses and parameters), and tensor parallelism over the 512-token vocabulary
# (equivalent, lib/equivalence.py). A token id beyond the vocabulary and a vocabulary mismatch
# end the job with one message, exit 2.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job sp 15)
"$BIN" tokenizer train --corpus "$WORK/corpus.txt" --vocab-size 512 --out "$WORK/sp.model" >/dev/null
"$BIN" tokenize "$WORK/corpus.txt" --tokenizer "$WORK/sp.model" --out "$WORK/corpus.tok" >/dev/null
sp=(--set model.vocab_size=512 --set "data.tokenizer={\"sentencepiece\": \"$WORK/sp.model\"}")
tok=(--set model.vocab_size=512 --set data.format=tokens --set "data.corpus=[\"$WORK/corpus.tok\"]")
run_mpi 1 "$BIN" run "$job" --out "$WORK/text" "${sp[@]}" >/dev/null
run_mpi 1 "$BIN" run "$job" --out "$WORK/tokens" "${tok[@]}" >/dev/null
run_mpi 2 "$BIN" run "$job" --out "$WORK/tp2" "${sp[@]}" --set parallel.tp=2 >/dev/null
"$PY" - "$WORK/text/report.json" "$WORK/tokens/report.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["runs"][0] for p in sys.argv[1:3])
assert a["loss_per_step"] == b["loss_per_step"], "pre-tokenized and on-the-fly runs differ"
assert a["ranks"][0]["param_fingerprint"] == b["ranks"][0]["param_fingerprint"]
print(f"text and token-file runs identical; loss {a['loss_per_step'][0]:.3f} -> {a['loss_per_step'][-1]:.3f}")
PY
"$PY" "$(dirname "$0")/lib/equivalence.py" "$WORK/text/report.json" "$WORK/tp2/report.json"

# A token file whose header claims a smaller vocabulary than an id it holds.
"$PY" - "$WORK/corpus.tok" "$WORK/bad.tok" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", data[8:12])[0]
header = json.loads(data[12:12 + n])
ids = [min(i, 299) for i in struct.unpack(f"<{header['count']}H", data[12 + n:])]
ids[5] = 300
header["vocab_size"] = 300
h = json.dumps(header).encode()
open(sys.argv[2], "wb").write(b"ELLMTOK1" + struct.pack("<I", len(h)) + h + struct.pack(f"<{len(ids)}H", *ids))
PY
expect_error 2 "efficientllm: $job: /data/corpus/0: token file \"$WORK/bad.tok\": token 5 is 300, not below the header's vocab_size 300" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/bad" --set parallel.dp=2 --set model.vocab_size=300 --set data.format=tokens --set "data.corpus=[\"$WORK/bad.tok\"]"
expect_error 2 "efficientllm: $job: /model/vocab_size: must be at least the tokenizer's vocabulary: sentencepiece:sp.model has 512 tokens, model.vocab_size is 256; set model.vocab_size to 512" \
  "$BIN" validate "$job" --set "data.tokenizer={\"sentencepiece\": \"$WORK/sp.model\"}"
expect_error 2 "efficientllm tokenizer train: --vocab-size must be in [260, 1048576] (256 byte pieces + <unk>, <s>, </s> + at least one), got 100" \
  "$BIN" tokenizer train --corpus "$WORK/corpus.txt" --vocab-size 100 --out "$WORK/x.model"
[[ ! -e $WORK/bad ]] || fail "a job with bad data wrote $WORK/bad"
echo "1 passed, 0 failed"
