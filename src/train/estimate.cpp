#include "train/estimate.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "metrics/flops.hpp"
#include "model/gpt.hpp"
#include "train/grad_sync.hpp"
#include "train/optimizer.hpp"

namespace ellm {

RankPlace rank_place(const ParallelConfig& p, int world_rank) {
  // mpi::make_grid: tp groups are runs of tp consecutive ranks; ep groups runs of ep consecutive dp ranks.
  const int dp_rank = world_rank / p.tp;
  return {world_rank, dp_rank, world_rank % p.tp, dp_rank % p.ep};
}

bool RankMemory::operator==(const RankMemory& o) const {
  return std::tie(weights, gradients, optimizer, activations, workspaces, communication, data, runtime) ==
         std::tie(o.weights, o.gradients, o.optimizer, o.activations, o.workspaces, o.communication, o.data,
                  o.runtime);
}

namespace {

// The elements of MPI's temporary buffers while one replica group's gradients are summed over
// `group_size` ranks: Open MPI's non-blocking all-reduce holds one of its bucket's size for each
// bucket in flight, and an overlapped sync may have every bucket in flight at once; a blocking
// all-reduce or reduce-scatter holds one bucket's at a time (measured: docs/ESTIMATE.md).
std::size_t sync_buffer_elems(const BucketPlan& plan, bool overlapped, int group_size) {
  if (group_size == 1) return 0;
  std::size_t all = 0, largest = 0;
  for (const GradientBucket& b : plan.buckets) {
    all += b.end - b.begin;
    largest = std::max(largest, b.end - b.begin);
  }
  return overlapped ? all : largest;
}

}  // namespace

std::size_t corpus_bytes(const Corpus& corpus) {
  std::size_t n = 0;
  for (const TokenSplit* s : {&corpus.train, &corpus.val})
    n += (s->tokens.size() + s->targets.size()) * sizeof(TokenId) +
         (s->samples.size() + s->counted.size()) * sizeof(std::int32_t);
  return n;
}

RankMemory estimate_rank_memory(const RunConfig& run, int world, const RankPlace& place,
                                std::size_t corpus_bytes) {
  const ParallelConfig& par = run.parallel;
  const int dp = world / par.tp, rows = run.training.batch_size / dp;  // as train_run
  TensorParallel<float> tp;  // the shard only: planning calls no collective
  tp.shard = {place.tp_rank, par.tp};
  tp.sequence = par.sequence_parallel;
  tp.replicas.size = dp;
  tp.experts.rank = place.ep_rank;
  tp.experts.size = par.ep;
  const ModelPlan<float> plan = plan_model<float>(run.model, rows, tp);
  const ModelBufferSizes n = model_buffer_sizes(plan, run.model, rows, par.tp);

  // The two replica groups' buckets, as train_run's GradientSyncs cut them.
  const std::size_t bucket_bytes = std::size_t(par.bucket_mib * 1024 * 1024);
  const BucketPlan dense = plan_buckets(plan.params, ReplicaGroup::DataParallel, bucket_bytes, par.zero1,
                                        place.dp_rank, dp);
  const BucketPlan experts = plan_buckets(plan.params, ReplicaGroup::ExpertDataParallel, bucket_bytes, false,
                                          place.dp_rank / par.ep, dp / par.ep);
  const std::size_t moments = AdamW::moment_elems(plan.params, merge_owned(dense.owned, experts.owned));

  constexpr double f = sizeof(float);
  RankMemory m;
  m.weights = f * n.params;
  m.gradients = f * n.grads;
  m.optimizer = 2 * f * moments;
  m.activations = f * n.acts;
  m.workspaces = f * (n.workspaces() + dense.part_elems + experts.part_elems);
  // The tensor-parallel all-reduces are blocking, in pieces of at most bucket_bytes.
  m.communication = f * (sync_buffer_elems(dense, par.overlap && !par.zero1, dp) +
                         sync_buffer_elems(experts, par.overlap, dp / par.ep)) +
                    (par.tp > 1 ? double(bucket_bytes) : 0.0);
  const double batch_tokens = 2.0 * rows * run.model.seq_len;  // tokens and targets
  m.data = double(corpus_bytes) + batch_tokens * sizeof(int);
  return m;
}

RunEstimate estimate_run(const RunConfig& run, int world, std::size_t corpus_bytes) {
  RunEstimate e;
  e.params = count_params(make_param_layout(run.model));
  e.tokens_per_step = double(run.training.batch_size) * run.model.seq_len;
  e.flops_per_step = training_flops_per_token(run.model) * e.tokens_per_step;
  e.kv_cache_bytes_per_token = kv_cache_bytes_per_token(run.model);
  // A rank's memory depends on its tp and ep shard, and with ZeRO-1 on its dp rank too.
  std::map<std::tuple<int, int, int>, RankMemory> by_shard;
  for (int r = 0; r < world; r++) {
    const RankPlace place = rank_place(run.parallel, r);
    const auto key = std::make_tuple(place.tp_rank, place.ep_rank, run.parallel.zero1 ? place.dp_rank : 0);
    auto it = by_shard.find(key);
    if (it == by_shard.end()) it = by_shard.emplace(key, estimate_rank_memory(run, world, place, corpus_bytes)).first;
    e.places.push_back(place);
    e.ranks.push_back(it->second);
  }
  return e;
}

}  // namespace ellm
