// Tensor parallelism at the model level, without MPI: tp ranks run as threads of this process
// joined by an in-memory all-reduce. Every rank must compute the tp = 1 model's loss, and its
// gradients must be exactly its shard of the tp = 1 gradients (double precision).
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "infer/decoder.hpp"
#include "model/gpt.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

// All-reduce among `size` threads: each publishes its buffer, waits, combines all, waits again
// (so no buffer is reused before everyone has read it).
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), buffers_(size), sync_(size) {}
  template <class Op>
  void all_reduce(int rank, double* x, std::size_t n, Op op) {
    buffers_[rank].assign(x, x + n);
    sync_.arrive_and_wait();
    for (std::size_t i = 0; i < n; i++) {
      double acc = buffers_[0][i];
      for (int r = 1; r < size_; r++) acc = op(acc, buffers_[r][i]);
      x[i] = acc;
    }
    sync_.arrive_and_wait();
  }
  // Every rank's buffer (n each), concatenated in rank order into full.
  void all_gather(int rank, const double* mine, double* full, std::size_t n) {
    buffers_[rank].assign(mine, mine + n);
    sync_.arrive_and_wait();
    for (int r = 0; r < size_; r++) std::copy(buffers_[r].begin(), buffers_[r].end(), full + r * n);
    sync_.arrive_and_wait();
  }
  TensorParallel<double> member(int rank, bool sequence) {
    TensorParallel<double> tp;
    tp.shard = {rank, size_};
    tp.sequence = sequence;
    tp.reduce_scatter = [this, rank](const double* full, double* mine, std::size_t n) {
      std::vector<double> summed(full, full + n * size_);
      all_reduce(rank, summed.data(), summed.size(), std::plus<>());
      std::copy_n(summed.data() + rank * n, n, mine);
    };
    tp.all_gather = [this, rank](const double* mine, double* full, std::size_t n) {
      all_gather(rank, mine, full, n);
    };
    tp.sum = [this, rank](double* x, std::size_t n) { all_reduce(rank, x, n, std::plus<>()); };
    tp.max = [this, rank](double* x, std::size_t n) {
      all_reduce(rank, x, n, [](double a, double b) { return std::max(a, b); });
    };
    return tp;
  }

 private:
  int size_;
  std::vector<std::vector<double>> buffers_;
  std::barrier<> sync_;
};

struct Batch {
  std::vector<int> tokens, targets;
};
Batch random_batch(const ModelConfig& m, int B) {
  Rng rng(5);
  Batch b;
  for (int i = 0; i < B * m.seq_len; i++) {
    b.tokens.push_back(int(rng.below(m.vocab_size)));
    b.targets.push_back(int(rng.below(m.vocab_size)));
  }
  return b;
}

struct Case {
  ModelConfig model;
  int tp;
  bool sequence_parallel = false;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "tp=" << c.tp << " sp=" << c.sequence_parallel << " H=" << c.model.n_heads
      << " Hkv=" << c.model.kv_heads() << " attention=" << int(c.model.attention)
      << " layers=" << c.model.layers.size();
}

class TensorParallelModel : public ::testing::TestWithParam<Case> {};

// The model's start: its declared tensors and, when fine-tuning adapters, their start from the
// base (collective: DoRA's row norms, PiSSA's SVD) moved by the same full-tensor noise on every
// layout, so that every adapter path carries a gradient.
void start(GPT<double>& model) {
  model.init_params(9);
  if (!model.config().finetune.adapters()) return;
  model.init_adapters();
  const auto& tensors = model.param_layout().tensors();
  for (std::size_t i = 0; i < tensors.size(); i++) {
    const TensorInfo& t = tensors[i];
    if (!t.adapter) continue;
    std::vector<double> full(t.full_numel), noise(t.numel);
    Rng rng(100 + i);
    for (double& x : full) x = 0.3 * rng.normal();
    extract_shard(full.data(), t, noise.data());
    for (std::size_t k = 0; k < t.numel; k++) model.params()[t.offset + k] += noise[k];
  }
}

TEST_P(TensorParallelModel, EveryRankMatchesItsShardOfTheFullModel) {
  const auto [m, tp, sequence] = GetParam();
  const int B = 2;
  const Batch batch = random_batch(m, B);
  // Two forward/backward passes without zero_grad: gradients must accumulate, and the partial
  // gradients (replicated kv heads, sequence-parallel norms, MLA's latents, NSA's φ) are summed
  // over the group once, after both.
  GPT<double> full(m, B);
  start(full);
  double full_loss = 0;
  for (int pass = 0; pass < 2; pass++) {
    full_loss = full.forward(batch.tokens.data(), batch.targets.data(), B);
    full.backward();
  }

  ThreadGroup group(tp);
  std::vector<double> losses(tp);
  std::vector<std::unique_ptr<GPT<double>>> shards(tp);
  std::vector<std::thread> threads;
  for (int r = 0; r < tp; r++) {
    threads.emplace_back([&, r] {
      shards[r] = std::make_unique<GPT<double>>(m, B, group.member(r, sequence));
      start(*shards[r]);
      for (int pass = 0; pass < 2; pass++) {
        losses[r] = shards[r]->forward(batch.tokens.data(), batch.targets.data(), B);
        shards[r]->backward();
      }
      shards[r]->reduce_tensor_parallel_grads();
    });
  }
  for (std::thread& t : threads) t.join();

  const auto& full_tensors = full.param_layout().tensors();
  for (int r = 0; r < tp; r++) {
    EXPECT_NEAR(losses[r], full_loss, 1e-12) << "rank " << r;
    const auto& local_tensors = shards[r]->param_layout().tensors();
    ASSERT_EQ(local_tensors.size(), full_tensors.size());
    for (std::size_t i = 0; i < local_tensors.size(); i++) {
      const TensorInfo& t = local_tensors[i];
      if (!t.trainable) continue;  // frozen by fine-tuning: no gradient
      std::vector<double> expected(t.numel);
      extract_shard(full.grads() + full_tensors[i].offset, t, expected.data());
      const double* got = shards[r]->grads() + t.offset;
      double worst = 0;
      for (std::size_t k = 0; k < t.numel; k++) worst = std::max(worst, std::fabs(got[k] - expected[k]));
      EXPECT_LT(worst, 1e-10) << "rank " << r << " " << t.name;
    }
  }

  // Which slice a rank holds, by hand rather than through extract_shard (init_params builds the
  // shards with it, so comparing with it would only compare the call with itself): the
  // vocabulary-parallel embedding keeps rows [r·V/tp, (r+1)·V/tp) of (V, C), the row-parallel MLP
  // output columns [r·F/tp, (r+1)·F/tp) of every row of (C, F).
  const int V = m.vocab_size, C = m.d_model, F = m.d_ff;
  const auto offset_of = [](const GPT<double>& g, const std::string& name) {
    for (const TensorInfo& t : g.param_layout().tensors()) {
      if (t.name == name) return t.offset;
    }
    throw std::invalid_argument("no tensor " + name);
  };
  for (int r = 0; r < tp; r++) {
    GPT<double>& s = *shards[r];
    const std::size_t fw = offset_of(full, "wte"), sw = offset_of(s, "wte");
    const std::size_t fo = offset_of(full, "h.1.mlp.out.w"), so = offset_of(s, "h.1.mlp.out.w");
    for (std::size_t i = 0; i < std::size_t(V / tp) * C; i++) {
      const std::size_t local = sw + i, whole = fw + std::size_t(r) * (V / tp) * C + i;
      ASSERT_EQ(s.params()[local], full.params()[whole]) << "wte rank " << r;
      if (s.num_grads() > sw) ASSERT_NEAR(s.grads()[local], full.grads()[whole], 1e-10) << "dwte rank " << r;
    }
    for (int i = 0; i < C; i++) {
      for (int j = 0; j < F / tp; j++) {
        const std::size_t local = so + std::size_t(i) * (F / tp) + j,
                          whole = fo + std::size_t(i) * F + r * F / tp + j;
        ASSERT_EQ(s.params()[local], full.params()[whole]) << "mlp.out.w rank " << r;
        if (s.num_grads() > so) ASSERT_NEAR(s.grads()[local], full.grads()[whole], 1e-10) << "dmlp.out.w rank " << r;
      }
    }
  }
}

ModelConfig small(Norm norm, Activation act, Positions pos, int heads, int kv_heads) {
  ModelConfig m;
  m.vocab_size = 12;  // divisible by every tp tested
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = heads;
  m.n_kv_heads = kv_heads;
  m.d_ff = 24;
  m.seq_len = 8;  // divisible by every tp tested (sequence parallelism splits the tokens)
  m.norm = norm;
  m.activation = act;
  m.positions = pos;
  return m;
}

ModelConfig mla(int q_latent) {
  ModelConfig m = small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 0);
  m.attention = AttentionKind::MLA;
  m.mla_kv_latent = 6;
  m.mla_q_latent = q_latent;
  m.mla_rope_dim = 2;
  return m;
}
ModelConfig nsa() {
  ModelConfig m = small(Norm::LayerNorm, Activation::GELU, Positions::RoPE, 4, 2);
  m.seq_len = 8;
  m.attention = AttentionKind::NSA;
  m.nsa_block = 4;
  m.nsa_stride = 2;
  m.nsa_select_block = 2;
  m.nsa_select_n = 3;
  m.nsa_window = 3;
  return m;
}
// Pythia's block: parallel wiring, partial rotary, LayerNorm, GELU.
ModelConfig pythia() {
  ModelConfig m = small(Norm::LayerNorm, Activation::GELU, Positions::RoPE, 2, 0);
  m.wiring = Wiring::Parallel;
  m.rotary_pct = 0.25;  // head size 8: 2 rotary dimensions
  return m;
}
// Three layers of three kinds: GQA, MLA, and a parallel-wired windowed GQA with its own d_ff.
ModelConfig hybrid() {
  ModelConfig m = small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 2);
  m.n_layers = 3;
  ModelConfig parallel = m;
  parallel.wiring = Wiring::Parallel;
  parallel.window = 3;
  parallel.d_ff = 16;
  m.layers = {m, mla(0), parallel};
  m.layers[1].n_layers = 3;
  return m;
}

// Mamba: inner channels split, x_proj's output all-reduced (docs/ATTENTION_FREE.md); alone, and
// between attention layers.
ModelConfig mamba() {
  ModelConfig m = small(Norm::RMSNorm, Activation::SwiGLU, Positions::None, 4, 0);
  m.token_mixer = TokenMixerKind::Mamba;
  m.mamba_d_state = 4;
  m.mamba_chunk = 3;
  return m;
}
ModelConfig mamba_hybrid() {
  ModelConfig m = mamba();
  m.positions = Positions::RoPE;
  m.n_layers = 3;
  ModelConfig attention = small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 2);
  attention.n_layers = 3;
  m.layers = {m, attention, m};
  return m;
}

// Fine-tuning adapters (docs/PEFT.md): DoRA on every linear, its row norms on the row-parallel
// ones summed over the ranks; PiSSA with the SVD of the full weights (not on down, whose exact
// parameters the test compares: the residual's sub-block products may round differently).
ModelConfig adapted(ModelConfig m, FinetuneMethod method, std::vector<std::string> targets) {
  m.finetune.method = method;
  m.finetune.rank = 2;
  m.finetune.alpha = 3;
  m.finetune.target_modules = std::move(targets);
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, TensorParallelModel,
    ::testing::Values(Case{small(Norm::LayerNorm, Activation::GELU, Positions::Learned, 4, 0), 2},
                      Case{small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 2), 2},
                      Case{small(Norm::LayerNorm, Activation::SwiGLU, Positions::ALiBi, 4, 4), 4},
                      // kv heads replicated: fewer kv heads than tensor-parallel ranks
                      Case{small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 1), 2},
                      Case{small(Norm::LayerNorm, Activation::GELU, Positions::None, 4, 1), 4},
                      Case{small(Norm::RMSNorm, Activation::GELU, Positions::RoPE, 4, 2), 4},
                      // sequence parallelism: the residual stream's rows split over the ranks
                      Case{small(Norm::LayerNorm, Activation::GELU, Positions::Learned, 4, 0), 2, true},
                      Case{small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 1), 4, true},
                      Case{small(Norm::LayerNorm, Activation::GELU, Positions::Sinusoidal, 4, 2), 2, true},
                      // MLA and NSA: heads split, latents and φ replicated with partial gradients
                      Case{mla(0), 2}, Case{mla(3), 4}, Case{mla(3), 2, true},
                      Case{nsa(), 2}, Case{nsa(), 2, true},
                      // composed blocks
                      Case{pythia(), 2}, Case{pythia(), 2, true}, Case{hybrid(), 2},
                      Case{hybrid(), 4, true},
                      Case{mamba(), 2}, Case{mamba(), 4, true}, Case{mamba_hybrid(), 2},
                      Case{mamba_hybrid(), 4, true},
                      // fine-tuning adapters on the column- and row-parallel linears
                      Case{adapted(small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 2),
                                   FinetuneMethod::DoRA, {"all"}), 2},
                      Case{adapted(small(Norm::LayerNorm, Activation::GELU, Positions::Learned, 4, 0),
                                   FinetuneMethod::DoRA, {"all"}), 4, true},
                      Case{adapted(small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 2),
                                   FinetuneMethod::PiSSA, {"q", "k", "v", "o", "gate", "up"}), 2},
                      Case{adapted(small(Norm::LayerNorm, Activation::GELU, Positions::Learned, 4, 0),
                                   FinetuneMethod::PiSSA, {"q", "o", "fc"}), 4}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return "tp" + std::to_string(i.param.tp) + (i.param.sequence_parallel ? "_sp" : "") + "_H" +
             std::to_string(i.param.model.n_heads) + "_KV" + std::to_string(i.param.model.kv_heads()) +
             "_" + std::to_string(i.index);
    });

// Cached decoding under tensor parallelism (src/infer/decoder.hpp): every rank's decoder, fed a
// prefill then one token at a time, returns the full-vocabulary logits of the tp = 1 decoder
// (the decoder never splits the stream's rows, so the sequence-parallel cases run without it).
class TensorParallelDecoder : public ::testing::TestWithParam<Case> {};

std::vector<double> decode_all(Decoder<double>& dec, const Batch& batch, int B) {
  const ModelConfig& m = dec.config();
  std::vector<double> out;
  std::vector<int> chunk;
  for (const int c : {5, 1, 1, 1}) {
    const int pos0 = dec.position();
    chunk.clear();
    for (int b = 0; b < B; b++)
      chunk.insert(chunk.end(), batch.tokens.begin() + b * m.seq_len + pos0, batch.tokens.begin() + b * m.seq_len + pos0 + c);
    const double* logits = dec.forward(chunk.data(), c, true);
    out.insert(out.end(), logits, logits + std::size_t(B) * c * m.vocab_size);
  }
  return out;
}

TEST_P(TensorParallelDecoder, EqualsTheSingleRankDecoder) {
  const auto [m, tp, sequence] = GetParam();
  const int B = 2;
  const Batch batch = random_batch(m, B);
  Decoder<double> single(m, B);
  init_tensors(single.param_layout(), single.params(), 9);
  const std::vector<double> want = decode_all(single, batch, B);
  ThreadGroup group(tp);
  std::vector<std::vector<double>> got(tp);
  std::vector<std::thread> threads;
  for (int r = 0; r < tp; r++) {
    threads.emplace_back([&, r] {
      Decoder<double> dec(m, B, group.member(r, sequence));
      init_tensors(dec.param_layout(), dec.params(), 9);  // this rank's shards of the same model
      got[r] = decode_all(dec, batch, B);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < tp; r++) {
    ASSERT_EQ(got[r].size(), want.size());
    for (std::size_t i = 0; i < want.size(); i++) ASSERT_NEAR(got[r][i], want[i], 1e-12) << "rank " << r << " logit " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, TensorParallelDecoder,
    ::testing::Values(Case{small(Norm::LayerNorm, Activation::GELU, Positions::Learned, 4, 0), 2},
                      Case{small(Norm::LayerNorm, Activation::SwiGLU, Positions::ALiBi, 4, 4), 4},
                      Case{small(Norm::RMSNorm, Activation::SwiGLU, Positions::RoPE, 4, 1), 2},
                      Case{small(Norm::LayerNorm, Activation::GELU, Positions::Sinusoidal, 4, 2), 2, true},
                      Case{mla(3), 2}, Case{pythia(), 2}, Case{hybrid(), 4}, Case{mamba_hybrid(), 2},
                      Case{nsa(), 2}),
    [](const ::testing::TestParamInfo<Case>& i) { return "tp" + std::to_string(i.param.tp) + "_" + std::to_string(i.index); });

}  // namespace
}  // namespace ellm
