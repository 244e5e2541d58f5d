// Flat arenas, llm.c-style: all parameters of a model live in one buffer (and so do their
// gradients, the AdamW moments and the activations, each in its own buffer with its own layout);
// a tensor is an offset into its arena. Each block's tensors are contiguous so that later
// gradient buckets can follow the reverse layer order.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"

namespace ellm {

inline constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);  // tensor the variant lacks

// How a tensor of a tensor-parallel model relates to the full (tp = 1) tensor: this rank holds
// the listed ranges of dimension `dim` of the full tensor, concatenated in order. dim = -1: the
// whole tensor (replicated on every tensor-parallel rank).
struct Shard {
  int dim = -1;
  std::vector<std::pair<int, int>> ranges;  // [begin, end) along dim, ascending
  int replicas = 1;  // tensor-parallel ranks holding this same shard (MQA/GQA kv heads, kv < tp)
};

struct TensorInfo {
  std::string name;
  std::vector<int> shape;  // this rank's
  std::size_t offset = 0;
  std::size_t numel = 0;
  bool decay = false;  // AdamW weight decay applies (matrices and embeddings, not biases or norms)
  int layer = -1;      // position in the stack: -1 embeddings, 0…L−1 blocks, L the final norm
  std::vector<int> full_shape;  // the tensor at tp = 1
  Shard shard;
  bool replicated() const { return shard.dim < 0; }
};

struct ArenaRange {
  std::size_t begin, end;  // [begin, end) of an arena
};

// Appends tensors back to back and remembers them by name.
class ArenaLayout {
 public:
  // A tensor of `full_shape`, of which this rank keeps `shard` (default: all of it).
  std::size_t add(const std::string& name, std::vector<int> full_shape, bool decay = false,
                  int layer = -1, Shard shard = {});
  std::size_t total() const { return total_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  std::vector<TensorInfo> tensors_;
  std::size_t total_ = 0;
};

// Copies this rank's part of a full tensor (laid out row-major in full_shape) into `local`.
template <class T>
void extract_shard(const T* full, const TensorInfo& t, T* local);

struct BlockParams {
  std::size_t ln1_w, ln1_b;            // (C), (C) — ln1_b absent for RMSNorm
  // the attention mixer's own tensors are declared here (model/mixer.hpp)
  std::size_t attn_out_w, attn_out_b;  // (C, mixer width), (C)
  std::size_t ln2_w, ln2_b;            // (C), (C)
  std::size_t fc_w, fc_b;              // (F_in, C), (F_in): F_in = d_ff, or 2·d_ff for SwiGLU
  std::size_t fc_out_w, fc_out_b;      // (C, d_ff), (C)
};

struct ParamLayout {
  ArenaLayout arena;
  std::size_t wte;  // (V, C), tied with the LM head
  std::size_t wpe;  // (T, C), learned positions only
  std::vector<BlockParams> blocks;
  std::size_t lnf_w, lnf_b;  // (C), (C)
};

struct BlockActs {
  // The residual stream's rows: R = N, or N/tp under sequence parallelism.
  std::size_t ln1, ln1_mean, ln1_rstd;  // (R,C), (R), (R)
  std::size_t ln1_full;                 // (N,C) the mixer's input: ln1 gathered (ln1 itself at R = N)
  // the attention mixer's saved activations are declared here
  std::size_t atty;                     // (N, mixer width)
  std::size_t res2;                     // (R,C) residual after attention
  std::size_t ln2, ln2_mean, ln2_rstd;  // (R,C), (R), (R)
  std::size_t ln2_full;                 // (N,C) the MLP's input: ln2 gathered (or ln2)
  std::size_t fch, fch_act;             // (N,F_in), (N,d_ff)
  std::size_t res3;                     // (R,C) block output
};

// Activations for a micro-batch of B sequences of length T (N = B·T).
struct ActLayout {
  ArenaLayout arena;
  std::size_t encoded;  // (R,C)
  std::vector<BlockActs> blocks;
  std::size_t lnf, lnf_mean, lnf_rstd;  // (R,C), (R), (R)
  std::size_t lnf_full;                 // (N,C) the head's input: lnf gathered (or lnf)
  std::size_t logits;                   // (N,V): logits → probabilities → dlogits
  std::size_t losses;                   // (N)
};

int fc_in_width(const ModelConfig& m);  // rows of fc_w: d_ff, or 2·d_ff for SwiGLU

}  // namespace ellm
