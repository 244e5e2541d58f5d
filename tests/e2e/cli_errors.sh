# Bad input — command line, job file, corpus, launch layout, output directory — gives one clear
# message and exit code 2, on any number of ranks, without hanging.
source "$(dirname "$0")/lib/common.sh"
job=$(tiny_job errs 3)
expect_error 2 "efficientllm: unknown command 'frobnicate' (allowed: run, validate, estimate, topo, report, tokenizer, tokenize, generate, bench-infer, predict)" "$BIN" frobnicate
expect_error 2 "efficientllm run: unrecognised option '--bogus'" "$BIN" run "$job" --bogus
expect_error 2 "efficientllm run: missing the job file argument (JOB.json)" "$BIN" run
expect_error 2 "efficientllm validate: too many positional options have been specified on the command line" \
  "$BIN" validate "$job" "$job"
expect_error 2 "efficientllm: --set: expected PATH=VALUE such as training.steps=50, got \"steps\"" \
  "$BIN" validate "$job" --set steps
expect_error 2 "efficientllm: $WORK/nope.json: cannot read file: No such file or directory" \
  "$BIN" validate "$WORK/nope.json"
expect_error 2 "efficientllm: $job: /defaults/model/n_heads: d_model (64) must be divisible by n_heads (5) (from --set)" \
  "$BIN" validate "$job" --set model.n_heads=5
expect_error 2 "efficientllm: $job: /defaults/model/layer_pattern/1/n_heads: model-wide key; it is the same in every layer, so set it in \"model\" itself (allowed per layer: d_ff, activation, wiring, rotary_pct, attention, n_kv_heads, window, mla_kv_latent, mla_q_latent, mla_rope_dim, nsa_block, nsa_stride, nsa_select_block, nsa_select_n, nsa_window, mlp, moe_experts, moe_top_k, moe_shared_experts, moe_d_ff, moe_renormalize, moe_aux_coeff, moe_z_coeff, moe_capacity_factor, token_mixer, mamba_d_state, mamba_expand, mamba_d_conv, mamba_dt_rank, mamba_chunk, rwkv_head_size, rwkv_chunk, rwkv_mix_lora, rwkv_decay_lora) (from --set)" \
  "$BIN" validate "$job" --set 'model.layer_pattern=[{}, {"n_heads": 2}]'
expect_error 2 "efficientllm: --set: PATH must name one run field as SECTION.KEY; set an object or array field whole, such as model.layer_overrides={\"3\": {\"window\": 64}}; got \"model.layer_overrides.1.window=8\"" \
  "$BIN" validate "$job" --set model.layer_overrides.1.window=8

# Launch layout: the job asks for 2 ranks, mpirun started 1.
expect_error 2 "efficientllm: $job: run \"errs\" needs parallel.dp × parallel.tp = 2 × 1 = 2 MPI ranks but the job was launched on 1; launch with mpirun -np 2 or pass --set parallel.dp=1" \
  run_mpi 1 "$BIN" run "$job" --out "$WORK/o1" --set parallel.dp=2

# OPENBLAS_NUM_THREADS sizes each rank's threads: a value that is not a count is refused on every rank.
threads_two() { OPENBLAS_NUM_THREADS=two run_mpi 2 -x OPENBLAS_NUM_THREADS "$BIN" run "$job" --out "$WORK/o0" --set parallel.dp=2; }
expect_error 2 "efficientllm: environment: OPENBLAS_NUM_THREADS: expected a thread count from 1 to 4096, got 'two'" threads_two

# A missing corpus on 2 ranks: one message, exit 2, no hang.
expect_error 2 "efficientllm: $job: /defaults/data/corpus/0: cannot read corpus file \"$WORK/missing.txt\": No such file or directory (from --set)" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/o2" --set parallel.dp=2 --set "data.corpus=[\"$WORK/missing.txt\"]"

# A binary file is not a text corpus.
head -c 4096 /dev/urandom > "$WORK/binary.bin"
printf '\xff' | dd of="$WORK/binary.bin" bs=1 seek=0 conv=notrunc status=none
expect_error 2 "efficientllm: $job: /data/corpus/0: corpus file \"$WORK/binary.bin\" is not UTF-8 text (invalid byte at offset 0)" \
  "$BIN" validate "$job" --set "data.corpus=[\"$WORK/binary.bin\"]"

# Results already in the output directory are never overwritten.
mkdir -p "$WORK/used" && echo '{}' > "$WORK/used/runs.jsonl"
expect_error 2 "efficientllm: $WORK/used: already holds the results of a job (runs.jsonl); choose another --out, or --continue it" \
  run_mpi 2 "$BIN" run "$job" --out "$WORK/used" --set parallel.dp=2
echo "1 passed, 0 failed"
