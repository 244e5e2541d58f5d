# Training on real text learns context: after a short run the validation loss is below the
# entropy of the corpus's byte frequencies (the best any model without context can do), far
# below the uniform baseline ln 256, and it falls between the two evaluations.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job learn 200)
run_mpi 2 "$BIN" run "$job" --out "$WORK/out" --set parallel.dp=2 --set training.eval_every=100 \
  --set model.seq_len=64 --set training.batch_size=16 >/dev/null
"$PY" - "$WORK/corpus.txt" "$WORK/out/report.json" <<'PY'
import collections, json, math, sys
text = open(sys.argv[1], "rb").read()
counts = collections.Counter(text)
unigram = -sum(c / len(text) * math.log(c / len(text)) for c in counts.values())
run = json.load(open(sys.argv[2]))["runs"][0]
val = [v["loss"] for v in run["validation"]]
print(f"unigram entropy {unigram:.3f} nats; validation loss {val}; uniform {math.log(256):.3f}")
assert [v["step"] for v in run["validation"]] == [100, 200]
assert val[1] < val[0], "validation loss did not fall"
assert val[1] < unigram - 0.3, "no better than byte frequencies"
loss = run["loss_per_step"]
assert sum(loss[-10:]) / 10 < sum(loss[:5]) / 5 - 2.0
PY
echo "1 passed, 0 failed"
