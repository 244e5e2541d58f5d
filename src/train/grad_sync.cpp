#include "train/grad_sync.hpp"

#include <algorithm>

namespace ellm {

GradientSync::GradientSync(const ArenaLayout& params, ReplicaGroup group, std::size_t bucket_bytes,
                           bool overlap, bool zero1, mpi::Comm& dp)
    : overlap_(overlap && !zero1 && dp.size() > 1), zero1_(zero1 && dp.size() > 1), dp_(dp) {
  const std::size_t per_bucket = std::max<std::size_t>(1, bucket_bytes / sizeof(float));
  const auto& tensors = params.tensors();
  // Walk the arena backwards, cutting a bucket whenever it would grow past per_bucket.
  for (auto t = tensors.rbegin(); t != tensors.rend(); ++t) {
    if (!t->trainable || t->group != group) continue;
    for (std::size_t end = t->offset + t->numel; end > t->offset;) {
      Bucket* open = buckets_.empty() ? nullptr : &buckets_.back();
      if (!open || open->begin != end || open->end - open->begin >= per_bucket) {
        buckets_.push_back({end, end, t->layer, {}});
        open = &buckets_.back();
      }
      const std::size_t room = per_bucket - (open->end - open->begin);
      open->begin = end - std::min(room, end - t->offset);
      open->layer = std::min(open->layer, t->layer);
      end = open->begin;
    }
  }
  if (!zero1_) {
    for (auto b = buckets_.rbegin(); b != buckets_.rend(); ++b) {  // in arena order, merged
      if (!owned_.empty() && owned_.back().end == b->begin) {
        owned_.back().end = b->end;
      } else {
        owned_.push_back({b->begin, b->end});
      }
    }
    return;
  }
  std::size_t largest = 0;
  for (Bucket& b : buckets_) {  // a bucket holds ≤ 1024 MiB (validation): its offsets fit an int
    const std::size_t n = b.end - b.begin;
    for (int r = 0; r <= dp.size(); r++) b.parts.push_back(int(n * r / dp.size()));
    owned_.push_back({b.begin + b.parts[dp.rank()], b.begin + b.parts[dp.rank() + 1]});
    largest = std::max(largest, n / dp.size() + 1);
  }
  part_.resize(largest);
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
