// What a run needs, before it runs (`efficientllm estimate`, and `run`'s memory check, docs/ESTIMATE.md):
// parameter counts, FLOPs per step and the bytes each rank will hold, by part. Every size comes from
// the declarations the run allocates from — the model's plan (model/plan.hpp) and its buffer sizes
// (model_buffer_sizes), the gradient buckets (plan_buckets) and AdamW's moments (moment_elems) —
// with nothing allocated, so the estimate cannot drift from what train_run allocates.
#pragma once
#include <cstddef>
#include <vector>

#include "data/corpus.hpp"
#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm {

// A world rank's place in the run's grid, as mpi::make_grid assigns it.
struct RankPlace {
  int rank = 0, dp_rank = 0, tp_rank = 0, ep_rank = 0;
};
RankPlace rank_place(const ParallelConfig& p, int world_rank);

// Bytes one rank holds during training, by part.
struct RankMemory {
  double weights = 0;      // the parameter arena (this rank's shards; frozen tensors included)
  double gradients = 0;    // the gradient arena: trainable tensors only
  double optimizer = 0;    // AdamW's two moments of the trainable parts this rank updates (ZeRO-1: its share)
  double activations = 0;  // the saved activations of one micro-batch (the activation arena)
  double workspaces = 0;   // forward/backward workspaces, partial-gradient pack, ZeRO-1's bucket part
  double communication = 0;  // MPI's temporary buffers for the collectives (an allowance: docs/ESTIMATE.md)
  double data = 0;         // the corpus's tokens (train and validation splits) and one batch's tokens
  double runtime = 0;      // what the process holds besides (program, libraries, MPI): measured, given by the caller
  // The four arenas as the report's ranks[].arena_bytes counts them (activations there = activations + workspaces).
  double arenas() const { return weights + gradients + optimizer + activations + workspaces; }
  double total() const { return arenas() + communication + data + runtime; }
  bool operator==(const RankMemory& o) const;
};

// Memory of `place` in a run on `world` ranks (run.parallel.dp × tp must equal world, ep divide dp);
// runtime is left 0 for the caller to fill.
RankMemory estimate_rank_memory(const RunConfig& run, int world, const RankPlace& place,
                                std::size_t corpus_bytes);

// Bytes the corpus's token arrays hold once loaded (what a run keeps while it trains).
std::size_t corpus_bytes(const Corpus& corpus);

struct RunEstimate {
  ParamCounts params;              // of the whole model (count_params)
  double tokens_per_step = 0;      // batch_size × seq_len
  double flops_per_step = 0;       // training FLOPs of one optimizer step, all ranks (metrics/flops.hpp)
  double kv_cache_bytes_per_token = 0;  // inference only (bench-infer), fp32, whole model
  std::vector<RankPlace> places;   // every rank of the run
  std::vector<RankMemory> ranks;   // by rank, runtime 0
};
// Every rank of the run on `world` ranks; ranks with the same shard share one computation.
RunEstimate estimate_run(const RunConfig& run, int world, std::size_t corpus_bytes);

}  // namespace ellm
