// The inference engine's model (docs/INFERENCE.md): the same layers and parameter layout as
// GPT<T>, run forward only over a chunk of c tokens of B sequences at a time, each block's token
// and channel mixers reading and extending their caches (docs/ARCHITECTURE.md, "Cached
// decoding"): a prompt is prefilled in one chunk (or several), then decoding feeds one token per
// step. Nothing is saved for backward and there are no gradients; the activation arena is laid
// out for B sequences of one chunk of up to seq_len tokens.
#pragma once
#include <vector>

#include "efficientllm/config.hpp"
#include "model/plan.hpp"

namespace ellm {

// A linear layer as the forward reaches it: its weight's arena offset and shape (out, in).
struct LinearShape {
  std::size_t w;
  int out, in;
};

template <class T>
class Decoder {
 public:
  // B sequences decoded side by side, each of up to cfg.seq_len tokens (the context: the learned
  // or fixed positions and the caches are sized for it). tp: this rank's shard and collectives
  // (sequence parallelism is not used). Throws std::invalid_argument naming the model field when
  // a layer cannot decode with a cache (NSA, MoE).
  Decoder(const ModelConfig& cfg, int B, TensorParallel<T> tp = {});

  // The parameters, in the layout of GPT<T>(cfg, ·, tp) (copy them from a trained model).
  T* params() { return params_.data(); }
  const T* params() const { return params_.data(); }
  std::size_t num_params() const { return params_.size(); }
  const ArenaLayout& param_layout() const { return plan_.params; }
  const ModelConfig& config() const { return cfg_; }
  int batch() const { return B_; }

  // The linear layers a forward reaches, the LM head last, in order (served ones only: not the
  // low-rank mixes declared fp32), found by a one-token pass; the caches are emptied after it.
  std::vector<LinearShape> linear_layers();
  // From now on those layers take their weights from `w` (its copies, e.g. quantized), nullptr:
  // the fp32 arena again. `w` must outlive the decoder's use of it.
  void serve_linears(const LinearWeights* w) { linear_ = w; }
  // Hands the fp32 arena's pages of `layers` (served from copies now) back to the system, so the
  // process holds the served format's footprint only: their contents are gone (read as zeros)
  // until weights_reloaded(). A tied LM head keeps its table (the embedding lookup reads it).
  // Returns the bytes released. Until reloaded, a forward without served copies throws
  // std::logic_error.
  std::size_t release_fp32_linears(const std::vector<LinearShape>& layers);
  // The caller refilled params() (e.g. load_run_weights): the fp32 weights are whole again.
  void weights_reloaded() { fp32_released_ = false; }

  // Empties every cache: the next forward starts the B sequences at position 0.
  void reset();
  int position() const { return pos_; }
  int context() const { return cfg_.seq_len; }

  // Feeds tokens (B,c) at positions position()…position()+c−1 and returns their next-token
  // logits over the whole vocabulary: (B,c,V) when all_rows, else (B,V) for each sequence's last
  // token. Valid until the next call. Throws std::out_of_range past the context.
  const T* forward(const int* tokens, int c, bool all_rows);

 private:
  T* a(std::size_t off) { return acts_.data() + off; }
  const T* p(std::size_t off) const { return off == kAbsent ? nullptr : params_.data() + off; }
  void head(int c, bool all_rows);

  ModelConfig cfg_;
  int B_;
  ModelPlan<T> plan_;
  const TensorParallel<T>& tp_;
  int vocab_begin_, vocab_local_;
  std::vector<T> params_, acts_, scratch_;
  std::vector<T> positions_;  // (T,C) fixed sinusoidal table, or empty
  std::vector<typename Block<T>::Cache> caches_;
  std::vector<T> last_, local_, gathered_, logits_;  // the head's rows and its outputs
  int pos_ = 0;
  const LinearWeights* linear_ = nullptr;
  bool fp32_released_ = false;
};

}  // namespace ellm
