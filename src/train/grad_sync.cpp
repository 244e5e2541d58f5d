#include "train/grad_sync.hpp"

#include <algorithm>

namespace ellm {

BucketPlan plan_buckets(const ArenaLayout& params, ReplicaGroup group, std::size_t bucket_bytes, bool zero1,
                        int dp_rank, int dp_size) {
  BucketPlan plan;
  std::vector<GradientBucket>& buckets = plan.buckets;
  const std::size_t per_bucket = std::max<std::size_t>(1, bucket_bytes / sizeof(float));
  const auto& tensors = params.tensors();
  // Walk the arena backwards, cutting a bucket whenever it would grow past per_bucket.
  for (auto t = tensors.rbegin(); t != tensors.rend(); ++t) {
    if (!t->trainable || t->group != group) continue;
    for (std::size_t end = t->offset + t->numel; end > t->offset;) {
      GradientBucket* open = buckets.empty() ? nullptr : &buckets.back();
      if (!open || open->begin != end || open->end - open->begin >= per_bucket) {
        buckets.push_back({end, end, t->layer, {}});
        open = &buckets.back();
      }
      const std::size_t room = per_bucket - (open->end - open->begin);
      open->begin = end - std::min(room, end - t->offset);
      open->layer = std::min(open->layer, t->layer);
      end = open->begin;
    }
  }
  if (!(zero1 && dp_size > 1)) {
    for (auto b = buckets.rbegin(); b != buckets.rend(); ++b) {  // in arena order, merged
      if (!plan.owned.empty() && plan.owned.back().end == b->begin) {
        plan.owned.back().end = b->end;
      } else {
        plan.owned.push_back({b->begin, b->end});
      }
    }
    return plan;
  }
  for (GradientBucket& b : buckets) {  // a bucket holds ≤ 1024 MiB (validation): its offsets fit an int
    const std::size_t n = b.end - b.begin;
    for (int r = 0; r <= dp_size; r++) b.parts.push_back(int(n * r / dp_size));
    plan.owned.push_back({b.begin + b.parts[dp_rank], b.begin + b.parts[dp_rank + 1]});
    plan.part_elems = std::max(plan.part_elems, n / dp_size + 1);
  }
  return plan;
}

std::vector<ArenaRange> merge_owned(std::vector<ArenaRange> a, const std::vector<ArenaRange>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end(), [](const ArenaRange& x, const ArenaRange& y) { return x.begin < y.begin; });
  return a;
}

GradientSync::GradientSync(const ArenaLayout& params, ReplicaGroup group, std::size_t bucket_bytes,
                           bool overlap, bool zero1, mpi::Comm& dp)
    : overlap_(overlap && !zero1 && dp.size() > 1), zero1_(zero1 && dp.size() > 1), dp_(dp) {
  BucketPlan plan = plan_buckets(params, group, bucket_bytes, zero1, dp.rank(), dp.size());
  buckets_ = std::move(plan.buckets);
  owned_ = std::move(plan.owned);
  part_.resize(plan.part_elems);
}

void GradientSync::grads_final_from(int layer, float* grads) {
  if (!overlap_) return;
  for (Bucket& b : buckets_) {
    if (b.started || b.layer < layer) continue;
    dp_.start_allreduce_sum(grads + b.begin, b.end - b.begin, pending_);
    b.started = true;
  }
  dp_.progress(pending_);
}

void GradientSync::finish(float* grads) {
  if (dp_.size() == 1) return;
  if (zero1_) {
    const int r = dp_.rank();
    for (const Bucket& b : buckets_) {
      dp_.reduce_scatter_sum(grads + b.begin, b.parts, part_.data());
      std::copy_n(part_.data(), b.parts[r + 1] - b.parts[r], grads + b.begin + b.parts[r]);
    }
    return;
  }
  if (!overlap_) {
    for (const Bucket& b : buckets_) {
      dp_.allreduce_sum(grads + b.begin, b.end - b.begin, (b.end - b.begin) * sizeof(float));
    }
    return;
  }
  grads_final_from(-1, grads);  // the embeddings, and anything not yet started
  dp_.wait(pending_);
  for (Bucket& b : buckets_) b.started = false;
}

void GradientSync::gather_params(float* params) {
  if (!zero1_) return;
  for (const Bucket& b : buckets_) dp_.allgather_in_place(params + b.begin, b.parts);
}

}  // namespace ellm
