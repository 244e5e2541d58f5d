# Checkpoints: a run resumed from a checkpoint continues bit-identically to the uninterrupted run
# (per-step loss and gradient norm, final parameter checksums and fingerprints compared exactly)
# on 1×1, on 1×2, on 2×1 with ZeRO-1 and for a mixture of experts on dp 2 × ep 2; writing
# checkpoints does not change the run; a checkpoint saved at dp × tp = 2×1 (ZeRO-1) loads at 1×2,
# and the MoE one at ep = 1, and both continue within float tolerance.
# Bad checkpoints stop the run before anything is written, with exit code 2 and one message.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job ckpt 10)
save=(--set checkpoint.save=true --set checkpoint.every=4)

# layout NAME NP OPTIONS...: the 10-step job, its report in $WORK/NAME
layout() {
  local name=$1 np=$2; shift 2
  run_mpi "$np" "$BIN" run "$job" --out "$WORK/$name" "$@" >/dev/null
}
layout plain 1
layout a 1 "${save[@]}"
layout a_resumed 1 --resume "$WORK/a/checkpoints/ckpt/step-000004.safetensors"
layout t 2 --set parallel.tp=2 "${save[@]}"
layout t_resumed 2 --set parallel.tp=2 --resume "$WORK/t/checkpoints/ckpt/step-000004.safetensors"
layout z 2 --set parallel.dp=2 --set parallel.zero1=true "${save[@]}" --set checkpoint.dir="$WORK/zck"
# a directory resumes from its highest step: 8 once step 10 is gone
rm "$WORK/zck/ckpt/step-000010.safetensors"
layout z_resumed 2 --set parallel.dp=2 --set parallel.zero1=true --resume "$WORK/zck/ckpt"
layout z_as_tp 2 --set parallel.tp=2 --resume "$WORK/zck/ckpt/step-000004.safetensors"
# mixture of experts, experts shared out over ep = 2: exact at dp 2 × ep 2, and at ep = 1
moe=(--set model.mlp=moe --set model.moe_experts=4 --set model.moe_d_ff=64 --set parallel.dp=2)
layout m 2 "${moe[@]}" --set parallel.ep=2 "${save[@]}"
layout m_resumed 2 "${moe[@]}" --set parallel.ep=2 --resume "$WORK/m/checkpoints/ckpt/step-000004.safetensors"
layout m_as_ep1 2 "${moe[@]}" --set parallel.ep=1 --resume "$WORK/m/checkpoints/ckpt/step-000004.safetensors"
# model.init_from: new runs from a's final weights (its directory: the latest), on 1×1 and 1×2
layout i 1 --set model.init_from="$WORK/a/checkpoints/ckpt"
layout i_tp 2 --set parallel.tp=2 --set model.init_from="$WORK/a/checkpoints/ckpt/step-000010.safetensors"

"$PY" - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
run = lambda name: json.load(open(f"{work}/{name}/report.json"))["runs"][0]
plain, a = run("plain"), run("a")
assert plain["loss_per_step"] == a["loss_per_step"], "saving checkpoints changed the run"
assert plain["param_checksums"] == a["param_checksums"]
saved = a["checkpoints"]["saved"]
assert [s["step"] for s in saved] == [4, 8, 10], saved
assert all(s["bytes"] > 0 for s in saved), saved
assert plain["checkpoints"] == {"initialised_from": None, "resumed_from": None, "saved": []}

# Started from a's trained weights: the first step's loss is far below a fresh model's, and the
# same on 1×2 (each rank cut its own shards) within float tolerance.
i, i_tp = run("i"), run("i_tp")
assert i["checkpoints"]["initialised_from"] == f"{work}/a/checkpoints/ckpt/step-000010.safetensors", i["checkpoints"]
assert i["checkpoints"]["resumed_from"] is None
assert i["loss_per_step"][0] < plain["loss_per_step"][0] - 0.5, (i["loss_per_step"][0], plain["loss_per_step"][0])
first = abs(i["loss_per_step"][0] - i_tp["loss_per_step"][0]) / i["loss_per_step"][0]
assert first < 1e-5, first
print(f"init_from: first loss {i['loss_per_step'][0]:.4f} against {plain['loss_per_step'][0]:.4f} fresh; 1×2 within {first:.1e}")
assert "- weights initialised from `" in open(f"{work}/i/report.md").read()

def exact(base, resumed, step):
    b, r = run(base), run(resumed)
    assert r["checkpoints"]["resumed_from"]["step"] == step, r["checkpoints"]
    for key in ("loss_per_step", "grad_norm_per_step", "lr_per_step"):
        assert b[key][step:] == r[key], (key, base, resumed, b[key][step:], r[key])
    assert b["param_checksums"] == r["param_checksums"], (base, resumed)
    assert [x["param_fingerprint"] for x in b["ranks"]] == [x["param_fingerprint"] for x in r["ranks"]]
    assert b["quality"]["val_loss_final"] == r["quality"]["val_loss_final"]
    print(f"{resumed}: steps {step}..9 bit-identical to {base}")

exact("a", "a_resumed", 4)
exact("t", "t_resumed", 4)
exact("z", "z_resumed", 8)
assert run("z_resumed")["checkpoints"]["resumed_from"]["file"].endswith("step-000008.safetensors")

exact("m", "m_resumed", 4)
md = open(f"{work}/a_resumed/report.md").read()
assert f"- **resumed** from `{work}/a/checkpoints/ckpt/step-000004.safetensors` at step 4 (saved at dp 1 × tp 1 × ep 1)" in md, md
assert "- checkpoints written after steps 4 8 10 (`" in open(f"{work}/a/report.md").read()

# Another layout sums in another order, so equal within float tolerance.
def close(base, resumed, layout):
    z, x = run(base), run(resumed)
    assert x["checkpoints"]["resumed_from"]["layout"] == layout, x["checkpoints"]
    worst = max(abs(p - q) / abs(p) for p, q in zip(z["loss_per_step"][4:], x["loss_per_step"]))
    first = abs(z["loss_per_step"][4] - x["loss_per_step"][0]) / z["loss_per_step"][4]
    print(f"{resumed}: first step's loss {first:.1e}, worst {worst:.1e} (relative to {base})")
    assert first < 1e-5 and worst < 1e-4, (resumed, first, worst)

close("z", "z_as_tp", {"dp": 2, "tp": 1, "ep": 1, "zero1": True})  # 2×1 ZeRO-1 → 1×2
close("m", "m_as_ep1", {"dp": 2, "tp": 1, "ep": 2, "zero1": False})
PY

# Bad checkpoints: exit 2, one message, no report directory.
expect_error 2 "efficientllm: $WORK/a/checkpoints/ckpt/step-000010.safetensors: tensor 'h.0.mlp.fc.w': shape [128, 64] does not match the job's model, which has [256, 64]" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --set model.d_ff=256 --set model.init_from="$WORK/a/checkpoints/ckpt"
expect_error 2 "efficientllm: $WORK/a/checkpoints/ckpt/step-000010.safetensors: tensor 'h.0.mlp.fc.w': shape [128, 64] does not match the job's model, which has [256, 64]" \
  "$BIN" validate "$job" --set model.d_ff=256 --set model.init_from="$WORK/a/checkpoints/ckpt"
ck="$WORK/a/checkpoints/ckpt"
expect_error 2 "efficientllm: $ck/step-000004.safetensors: was saved by a run with another model: /model/d_ff: 128 in the checkpoint, 256 in the job" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --set model.d_ff=256 --resume "$ck/step-000004.safetensors"
expect_error 2 "efficientllm: $ck/step-000010.safetensors: is at step 10 and the run has training.steps = 10: nothing left to train" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --resume "$ck"
cp "$ck/step-000004.safetensors" "$WORK/cut.safetensors"
truncate -s 5 "$WORK/cut.safetensors"
expect_error 2 "efficientllm: $WORK/cut.safetensors: truncated: 5 bytes, fewer than the 8-byte header length a safetensors file starts with" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/bad" --set parallel.dp=2 --resume "$WORK/cut.safetensors"
cp "$ck/step-000004.safetensors" "$WORK/flip.safetensors"
printf '\x7f' | dd of="$WORK/flip.safetensors" bs=1 seek=$(($(stat -c %s "$WORK/flip.safetensors") - 100)) conv=notrunc status=none
code=0
run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --resume "$WORK/flip.safetensors" 2>"$WORK/err" >/dev/null || code=$?
[[ $code == 2 ]] || fail "a flipped byte: exit $code"
grep -q "^efficientllm: $WORK/flip.safetensors: checksum mismatch: the data section hashes to xxh3_128:[0-9a-f]\{32\} but the header records xxh3_128:[0-9a-f]\{32\}: the file is corrupted$" "$WORK/err" ||
  { cat "$WORK/err" >&2; fail "no checksum message"; }
layout weights 1 --set checkpoint.save=true --set checkpoint.optimizer=false --set training.steps=4 --set checkpoint.dir="$WORK/wck"
expect_error 2 "efficientllm: $WORK/wck/ckpt/step-000004.safetensors: holds no optimizer state (saved with checkpoint.optimizer = false): resuming needs the AdamW moments" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --resume "$WORK/wck/ckpt"
expect_error 2 "efficientllm: $WORK/none: cannot open: No such file or directory" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/bad" --resume "$WORK/none"
two="$WORK/two.json"
sed 's/"defaults": {/"runs": [{"name": "r1"}, {"name": "r2"}], "defaults": {/' "$job" > "$two"
expect_error 2 "efficientllm: $two: --resume continues one run, and this job has 2; write a job file for the run to resume" \
  run_mpi 1 "$BIN" run "$two" --out "$WORK/bad" --resume "$ck"
[[ ! -e $WORK/bad ]] || fail "a refused resume wrote $WORK/bad"

# A save that cannot be written ends the run with the reason.
touch "$WORK/blocker"
code=0
run_mpi 1 "$BIN" run "$job" --out "$WORK/nosave" "${save[@]}" --set checkpoint.dir="$WORK/blocker" 2>"$WORK/err" >/dev/null || code=$?
[[ $code == 1 ]] || fail "an unwritable checkpoint: exit $code"
grep -q "^efficientllm: error: cannot save the checkpoint at step 4: " "$WORK/err" || { cat "$WORK/err" >&2; fail "no save error"; }
echo "1 passed, 0 failed"
