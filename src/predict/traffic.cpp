#include "predict/traffic.hpp"

#include <cmath>
#include <stdexcept>

#include "model/plan.hpp"

namespace ellm::predict {
namespace {

struct ParamBytes {
  double dense = 0, experts = 0, partial = 0;  // trainable, by replica group; partial_grad (full size)
};

ParamBytes param_bytes(const ModelConfig& m, const Layout& l, int rows, bool sequence) {
  TensorParallel<float> shard;
  shard.shard = {0, l.tp};
  shard.sequence = sequence;  // norms on 1/tp of the rows: their gradients become partial
  shard.experts.size = l.ep;
  const ModelPlan<float> plan = plan_model<float>(m, rows, shard);
  ParamBytes b;
  for (const TensorInfo& t : plan.params.tensors()) {
    if (!t.trainable) continue;
    (t.group == ReplicaGroup::ExpertDataParallel ? b.experts : b.dense) += 4.0 * double(t.numel);
    if (t.partial_grad && l.tp > 1) b.partial += 4.0 * double(t.full_numel);
  }
  return b;
}

// A logical operation of `bytes` split by Comm::allreduce_sum into buckets of ≤ bucket bytes.
Transfer bucketed(Group g, double bytes, double bucket, double times, std::string what) {
  const double calls = std::ceil(bytes / bucket);
  return {g, Collective::all_reduce, bytes / calls, calls * times, std::move(what)};
}

void check_supported(const RunConfig& run, const Layout& l) {
  if (l.dp < 1 || l.tp < 1 || l.ep < 1 || l.dp % l.ep != 0) {
    throw std::invalid_argument("layout dp " + std::to_string(l.dp) + " × tp " + std::to_string(l.tp) +
                                " × ep " + std::to_string(l.ep) + ": each ≥ 1 and ep must divide dp");
  }
  const ModelConfig& m = run.model;
  for (int i = 0; i < m.n_layers && l.tp > 1; i++) {
    const ModelConfig& b = m.layer(i);
    if (b.token_mixer != TokenMixerKind::Attention || b.wiring != Wiring::Sequential ||
        b.mlp == ChannelMixerKind::RWKV) {
      throw std::invalid_argument("predict: tensor parallelism is described for attention blocks with "
                                  "sequential wiring and a dense, MoE or no MLP only (layer " + std::to_string(i) + ")");
    }
  }
  if (m.finetune.adapters() && l.tp > 1) {
    throw std::invalid_argument("predict: adapters under tensor parallelism are not described");
  }
}

// Megatron regions per step: each (N,C) collective of model/residual_stream.hpp.
std::vector<Transfer> tensor_parallel_traffic(const RunConfig& run, int rows,
                                              const ParamBytes& p, double bucket) {
  const ModelConfig& m = run.model;
  const double N = double(rows) * m.seq_len, NC = 4.0 * N * m.d_model;
  int regions = 1;  // the embedding's lookup (forward) and the head's input gradient (backward)
  for (int i = 0; i < m.n_layers; i++) regions += m.layer(i).mlp == ChannelMixerKind::None ? 1 : 2;
  // Each region: one reduction in forward and one in backward (its conjugate).
  std::vector<Transfer> t;
  if (run.parallel.sequence_parallel) {
    t.push_back({Group::tp, Collective::reduce_scatter, NC, 2.0 * regions, "sequence-parallel reduce-scatter (N,C)"});
    t.push_back({Group::tp, Collective::all_gather, NC, 2.0 * regions, "sequence-parallel all-gather (N,C)"});
  } else {
    t.push_back(bucketed(Group::tp, NC, bucket, 2.0 * regions, "row-parallel output / input gradient (N,C)"));
  }
  t.push_back({Group::tp, Collective::all_reduce, 4.0 * N, 1, "cross-entropy row maxima (N)"});
  t.push_back({Group::tp, Collective::all_reduce, 8.0 * N, 1, "cross-entropy row sums (2N)"});
  if (p.partial > 0) t.push_back(bucketed(Group::tp, p.partial, bucket, 1, "partial gradients of replicated tensors"));
  t.push_back({Group::tp, Collective::all_reduce, 8, 1, "gradient norm (scalar)"});
  return t;
}

std::vector<Transfer> expert_traffic(const RunConfig& run, const Layout& l, int rows) {
  const ModelConfig& m = run.model;
  std::vector<Transfer> t;
  const double N = double(rows) * m.seq_len;
  for (int i = 0; i < m.n_layers; i++) {
    const ModelConfig& b = m.layer(i);
    if (b.mlp != ChannelMixerKind::MoE) continue;
    if (l.dp > 1) t.push_back({Group::dp, Collective::all_reduce, 8.0 * (2 * b.moe_experts + 1), 1, "MoE global-batch statistics"});
    if (l.ep == 1) continue;
    const double routed = b.moe_capacity_factor > 0
                              ? std::min(N * b.moe_top_k, std::ceil(b.moe_capacity_factor * N * b.moe_top_k / b.moe_experts) * b.moe_experts)
                              : N * b.moe_top_k;
    t.push_back({Group::ep, Collective::all_to_all, 4.0 * b.moe_experts, 1, "MoE per-expert row counts"});
    // dispatch and return in forward, the same two in backward; a rank sends its N·k routed rows
    // out and its experts' received rows back, N·k on average over the group (balanced or not)
    t.push_back({Group::ep, Collective::all_to_all, 4.0 * routed * m.d_model, 4, "MoE token dispatch/return (N·k,C)"});
  }
  if (l.ep > 1) t.push_back({Group::ep, Collective::all_reduce, 8, 1, "gradient norm of the experts (scalar)"});
  return t;
}

}  // namespace

const char* group_name(Group g) {
  switch (g) {
    case Group::tp: return "tp";
    case Group::dp: return "dp";
    case Group::edp: return "edp";
    case Group::ep: return "ep";
    case Group::world: return "world";
  }
  return "?";
}

int group_size(Group g, const Layout& l) {
  switch (g) {
    case Group::tp: return l.tp;
    case Group::dp: return l.dp;
    case Group::edp: return l.dp / l.ep;
    case Group::ep: return l.ep;
    case Group::world: return l.ranks();
  }
  return 1;
}

int group_span(Group g, const Layout& l) {
  switch (g) {
    case Group::tp: return l.tp;                               // consecutive ranks
    case Group::ep: return (l.ep - 1) * l.tp + 1;              // consecutive dp ranks, stride tp
    case Group::dp: return (l.dp - 1) * l.tp + 1;              // stride tp
    case Group::edp: return (l.dp / l.ep - 1) * l.ep * l.tp + 1;  // stride ep·tp
    case Group::world: return l.ranks();
  }
  return 1;
}

std::vector<Transfer> step_traffic(const RunConfig& run, const Layout& l, int rows) {
  check_supported(run, l);
  const ParamBytes p = param_bytes(run.model, l, rows, run.parallel.sequence_parallel);
  const double bucket = run.parallel.bucket_mib * 1024 * 1024;
  std::vector<Transfer> t;
  if (l.tp > 1) t = tensor_parallel_traffic(run, rows, p, bucket);
  for (Transfer& x : expert_traffic(run, l, rows)) t.push_back(std::move(x));
  if (l.dp > 1) {
    if (run.parallel.zero1) {
      // one reduce-scatter and one all-gather per bucket (grad_sync.cpp); the norm sums over dp too
      const double calls = std::ceil(p.dense / bucket);
      t.push_back({Group::dp, Collective::reduce_scatter, p.dense / calls, calls, "ZeRO-1 gradient reduce-scatter"});
      t.push_back({Group::dp, Collective::all_gather, p.dense / calls, calls, "ZeRO-1 parameter all-gather"});
      t.push_back({Group::dp, Collective::all_reduce, 8, 1, "gradient norm (scalar)"});
    } else {
      t.push_back(bucketed(Group::dp, p.dense, bucket, 1, "gradient all-reduce"));
    }
    t.push_back({Group::dp, Collective::all_reduce, 8, 1, "loss (scalar)"});
  }
  if (p.experts > 0 && l.dp / l.ep > 1) t.push_back(bucketed(Group::edp, p.experts, bucket, 1, "expert gradient all-reduce"));
  if (l.ranks() > 1) t.push_back({Group::world, Collective::all_reduce, 16, 1, "stop flags"});
  return t;
}

double total_bytes(const std::vector<Transfer>& transfers, Collective c) {
  double sum = 0;
  for (const Transfer& t : transfers) sum += t.collective == c ? t.bytes * t.calls : 0;
  return sum;
}

}  // namespace ellm::predict
