// Job files: the typed form of one run, and loading + validating a job file.
// Format reference: docs/JOBS.md. Every check happens here, before any work starts.
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

enum class Norm { LayerNorm, RMSNorm };
// GELU is the tanh approximation (GPT-2); GELUExact uses erf (GPT-NeoX/Pythia's "gelu").
enum class Activation { GELU, SwiGLU, GELUExact };
// Which linear layers carry a bias: all (GPT-2, GPT-NeoX), none (Llama), or only the q, k, v
// projections (Qwen2). LayerNorm's own bias is part of the norm, not of this switch.
enum class Bias { All, None, QKV };
// Learned absolute, rotary, fixed sinusoidal absolute (Vaswani et al.), ALiBi relative biases
// (Press et al.), or none (causal masking alone carries order).
enum class Positions { Learned, RoPE, Sinusoidal, ALiBi, None };
// GQA covers MHA (n_kv_heads = n_heads) and MQA (n_kv_heads = 1), with an optional sliding window;
// MLA is DeepSeek-V2's latent attention; NSA is native sparse attention (docs/ATTENTION.md).
enum class AttentionKind { GQA, MLA, NSA };
// How a block joins its two branches: pre-norm residual one after the other (GPT-2, Llama), or
// both from the same input, x + mixer(ln1(x)) + mlp(ln2(x)) (GPT-J, GPT-NeoX, Pythia).
enum class Wiring { Sequential, Parallel };
// A block's channel mixer: the dense MLP, a mixture of experts (docs/MOE.md), RWKV-6's channel
// mix (token shift, squared ReLU, receptance gate; docs/ATTENTION_FREE.md), or none: a
// mixer-only block x + mixer(ln1(x)), the layout of Mamba's stack.
enum class ChannelMixerKind { Dense, MoE, RWKV, None };
// A block's token mixer: attention (model.attention says which), or an attention-free recurrence
// (docs/ATTENTION_FREE.md): Mamba's selective scan or RWKV-6's time mix.
enum class TokenMixerKind { Attention, Mamba, RWKV6 };

// Fine-tuning (docs/PEFT.md; the semantics of Hugging Face PEFT). full: every tensor trains;
// freeze: only the last freeze_last_k blocks train (their freeze_modules parts); the LoRA family: every base tensor is frozen
// and each target linear gains trainable factors A (rank, in) and B (out, rank) with
// W' = W₀ + s·B·A, s = alpha / rank (rslora: alpha / √rank); lora_plus trains B at
// lora_plus_ratio × lr; dora adds a trainable magnitude per output row; pissa starts A and B
// from the top-rank singular triplets of W₀ and W₀ becomes the residual.
enum class FinetuneMethod { Full, Freeze, LoRA, LoRAPlus, RSLoRA, DoRA, PiSSA };

struct FinetuneConfig {
  FinetuneMethod method = FinetuneMethod::Full;
  int rank = 8;
  double alpha = 16;
  double dropout = 0;  // on the adapter's input in training (PEFT's lora_dropout), [0, 1); dora: 0 only
  // Which linears carry adapters: q, k, v, o (attention), fc (a GELU MLP's first projection),
  // gate, up (SwiGLU's halves of it), down (the MLP's output projection); "all": every one.
  std::vector<std::string> target_modules = {"q", "v"};
  int freeze_last_k = 2;          // freeze: the blocks that train (LLaMA-Factory's default: 2)
  // freeze: which parts of those blocks train (LLaMA-Factory's freeze_trainable_modules): attn
  // (the token mixer), mlp (the channel mixer), norm (the block's norms); "all": all of them.
  std::vector<std::string> freeze_modules = {"all"};
  double lora_plus_ratio = 16;    // lora_plus: B's learning rate over A's (the paper: 16)
  int pissa_svd_iters = 0;        // pissa: 0 exact SVD (LAPACK); n > 0 randomized, n power iterations
  // Adapters alone in Hugging Face PEFT's layout (adapter_config.json + adapter_model.safetensors,
  // io/peft.hpp): loaded onto the base before the first step (empty: none), and written after
  // the last step (empty: not written).
  std::filesystem::path adapter_from;
  std::filesystem::path save_adapter;

  bool adapters() const {
    return method != FinetuneMethod::Full && method != FinetuneMethod::Freeze;
  }
  // The factor on B·A.
  double scale() const {
    return method == FinetuneMethod::RSLoRA ? alpha / std::sqrt(double(rank)) : alpha / rank;
  }
  // Whether the model's own tensors at `layer` (-1 embeddings, 0…n_layers−1 blocks, n_layers the
  // final norm and head) train.
  bool trains_base(int layer, int n_layers) const {
    if (method == FinetuneMethod::Full) return true;
    if (method == FinetuneMethod::Freeze) return layer >= n_layers - freeze_last_k && layer < n_layers;
    return false;
  }
  // Whether a part ("attn", "mlp", "norm") of a block that trains_base trains too.
  bool trains_module(const std::string& module) const {
    if (method != FinetuneMethod::Freeze) return true;
    for (const std::string& m : freeze_modules)
      if (m == module || m == "all") return true;
    return false;
  }
  bool targets(const std::string& module) const {
    for (const std::string& t : target_modules)
      if (t == module || t == "all") return true;
    return false;
  }
};

struct ModelConfig {
  int vocab_size = 256;  // at least the data's vocabulary (docs/DATA.md); 256: the byte values
  int n_layers = 6;
  int d_model = 384;
  int n_heads = 6;
  int d_ff = 1536;  // hidden width of the MLP (per branch for SwiGLU)
  int seq_len = 256;
  Norm norm = Norm::LayerNorm;
  Activation activation = Activation::GELU;
  Positions positions = Positions::Learned;
  double rope_base = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;
  Bias bias = Bias::All;
  bool tie_embeddings = true;  // the LM head is the token embedding (else its own (V,C) tensor)
  // A Hugging Face model directory (config.json + safetensors) whose config and weights the run
  // starts from (docs/HF_IMPORT.md); empty: a new model from the fields above.
  std::filesystem::path from_hf;
  // An efficientllm checkpoint (a step-*.safetensors file, or a directory: its latest) whose
  // weights the model starts from, with a fresh optimizer at step 0 (docs/CHECKPOINTS.md); after
  // from_hf, whose architecture it must match. Empty: the declared initialisers.
  std::filesystem::path init_from;

  AttentionKind attention = AttentionKind::GQA;
  int n_kv_heads = 0;  // 0: n_heads (MHA); 1: MQA; must divide n_heads
  int window = 0;      // GQA sliding window (keys per query, itself included); 0: full causal
  int mla_kv_latent = 128;  // d_c: the per-token latent the KV cache holds
  int mla_q_latent = 0;     // d_c': query compression; 0: queries come from the input directly
  int mla_rope_dim = 16;    // d_h^R: decoupled rotary dimensions per head (one shared key part)
  int nsa_block = 32;         // l: compression block length
  int nsa_stride = 16;        // d: compression stride
  int nsa_select_block = 64;  // l': selection block size
  int nsa_select_n = 16;      // n: selected blocks per query (first and 2 local ones included)
  int nsa_window = 512;       // w: sliding-window branch width
  Wiring wiring = Wiring::Sequential;
  // RoPE turns the first head_dim·rotary_pct dimensions of each head (Pythia: 0.25); the rest
  // carry no position. MLA's decoupled rotary part is mla_rope_dim instead.
  double rotary_pct = 1.0;
  ChannelMixerKind mlp = ChannelMixerKind::Dense;
  // Mixture of experts (mlp = "moe"): E routed experts of hidden width moe_d_ff (0: d_ff), each
  // token sent to its top-k by a softmax router; optional shared experts every token uses.
  int moe_experts = 8;
  int moe_top_k = 2;
  int moe_shared_experts = 0;
  int moe_d_ff = 0;
  bool moe_renormalize = false;     // top-k weights divided by their sum
  double moe_aux_coeff = 0.01;      // Switch/GShard load-balancing loss coefficient
  double moe_z_coeff = 0.0;         // ST-MoE router z-loss coefficient (0: off)
  double moe_capacity_factor = 0.0; // 0: dropless; else each expert takes ⌈cf·N·k/E⌉ tokens
  TokenMixerKind token_mixer = TokenMixerKind::Attention;
  // Mamba-1 (token_mixer = "mamba"): inner width mamba_expand·d_model, state size N per inner
  // channel, causal depthwise convolution of mamba_d_conv taps, Δ's low rank (0: ⌈d_model/16⌉),
  // and the scan's recompute chunk: backward keeps states only every mamba_chunk tokens.
  int mamba_d_state = 16;
  int mamba_expand = 2;
  int mamba_d_conv = 4;
  int mamba_dt_rank = 0;
  int mamba_chunk = 64;
  // RWKV-6 time mix (token_mixer = "rwkv6"): d_model / rwkv_head_size heads, each with a
  // (head size)² matrix state; the chunked kernel's chunk length; the ranks of the data-dependent
  // token-shift (TIME_MIX_EXTRA_DIM) and decay (TIME_DECAY_EXTRA_DIM) low-rank projections.
  int rwkv_head_size = 64;
  int rwkv_chunk = 32;
  int rwkv_mix_lora = 32;
  int rwkv_decay_lora = 64;

  // Per-layer configs, resolved from the job's model.layer_pattern and model.layer_overrides
  // (docs/JOBS.md): layers[l] is this config with layer l's block fields changed. Empty: every
  // layer is this config. Model-wide fields (vocabulary, width, heads, sequence, norm, positions)
  // are the same in every entry.
  std::vector<ModelConfig> layers;
  // How the model is fine-tuned (the job's finetune section): which tensors are frozen, and the
  // adapters the linears declare. Full: none.
  FinetuneConfig finetune;

  int head_dim() const { return d_model / n_heads; }
  int kv_heads() const { return n_kv_heads == 0 ? n_heads : n_kv_heads; }
  int rotary_dim() const { return int(head_dim() * rotary_pct); }  // GPT-NeoX's rotary_ndims
  bool linear_bias() const { return bias == Bias::All; }
  bool qkv_bias() const { return bias != Bias::None; }
  int expert_d_ff() const { return moe_d_ff == 0 ? d_ff : moe_d_ff; }
  int mamba_d_inner() const { return mamba_expand * d_model; }
  int mamba_rank() const { return mamba_dt_rank == 0 ? (d_model + 15) / 16 : mamba_dt_rank; }
  int rwkv_heads() const { return d_model / rwkv_head_size; }
  const ModelConfig& layer(int l) const { return layers.empty() ? *this : layers[l]; }
};

struct TrainingConfig {
  int steps = 200;
  int batch_size = 8;  // global batch in sequences, split evenly across dp ranks
  double lr = 1e-3;
  double min_lr = 1e-4;  // cosine decay ends here at the last step
  int warmup_steps = 20;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;  // global L2 norm; 0 disables clipping
  std::uint64_t seed = 1234;
  int eval_every = 50;    // steps between validation passes; 0 = only at the end
  int eval_batches = 8;   // batches of batch_size sequences per validation pass
  int log_every = 10;     // steps between plain progress lines when not on a terminal
  int warmup_iters = 3;   // first steps excluded from latency/throughput statistics
  // After the last step, the model is written here in the Hugging Face layout (config.json +
  // model.safetensors, docs/HF_IMPORT.md); empty: not written.
  std::filesystem::path export_hf;
};

// The default corpus: English text from Debian's fortunes packages (fortunes-min, fortunes),
// installed by scripts/setup.sh. About 2 MB.
inline std::vector<std::filesystem::path> default_corpus() {
  std::vector<std::filesystem::path> files;
  for (const char* name : {"fortunes", "literature", "wisdom", "people", "humorists", "science"}) {
    files.push_back(std::filesystem::path("/usr/share/games/fortunes") / name);
  }
  return files;
}

// How the corpus files are read (docs/DATA.md): UTF-8 text tokenized on the fly, pre-tokenized
// token files, or instruction JSONL (prompt/response or chat messages) packed into sequences.
enum class DataFormat { Text, Tokens, Instructions };

// The tokenizer of text and instruction corpora: the 256 byte values, or a SentencePiece model
// file (a tokenizer.model of Llama-2, TinyLlama, Mistral, or one trained by `efficientllm
// tokenizer train`).
struct TokenizerConfig {
  std::filesystem::path sentencepiece;  // resolved like corpus paths; empty: bytes
  bool bytes() const { return sentencepiece.empty(); }
};

struct DataConfig {
  // Resolved: relative paths are relative to the job file.
  std::vector<std::filesystem::path> corpus = default_corpus();
  double val_fraction = 0.05;  // tail of every corpus file held out for validation
  DataFormat format = DataFormat::Text;
  TokenizerConfig tokenizer;
};

// The process grid: dp × tp ranks (tensor-parallel groups are consecutive ranks, so a group
// shares a node when ranks are placed by node).
struct ParallelConfig {
  int dp = 1;
  int tp = 1;               // Megatron-style tensor parallelism (GQA, MLA and NSA layers)
  double bucket_mib = 1.0;  // data-parallel gradient all-reduce bucket size
  bool overlap = true;      // start each bucket's all-reduce as soon as backward has finished it
  bool zero1 = false;       // ZeRO-1: optimizer state sharded over the data-parallel ranks
  bool sequence_parallel = false;  // with tp > 1: norms and residuals on 1/tp of the tokens
  int ep = 1;  // expert parallelism: ep data-parallel ranks share out each MoE layer's experts
  // A rank with no progress (no collective completed, no step ended) for this long ends the job
  // (mpi/watchdog.hpp); 0 turns the watchdog off. Must exceed the longest step and checkpoint save.
  double watchdog_s = 600;
};

// Where each rank runs (topology/mapping.hpp): keep the launcher's binding, pack ranks onto
// neighbouring cores, or spread them round-robin over packages and NUMA nodes.
enum class MappingPolicy { Inherit, Compact, Scatter };

struct TopologyConfig {
  MappingPolicy policy = MappingPolicy::Inherit;
};

// The samplers behind AMU, PCU and AEC (docs/METRICS.md).
struct MetricsConfig {
  int sample_period_ms = 100;  // 0 turns the samplers off
  // The energy estimate's node power (W) at idle and at full CPU load, used only when no energy
  // counter can be read; 0 and 0 = the defaults for the CPU model.
  double p_idle_w = 0;
  double p_max_w = 0;
};

// Checkpoints (docs/CHECKPOINTS.md): written every `every` steps and at the end when `save`;
// `--resume` continues a run from one.
struct CheckpointConfig {
  bool save = false;
  int every = 0;          // steps between checkpoints; 0 = only at the end
  bool optimizer = true;  // include the AdamW moments (needed to resume; not for weights only)
  std::string dir;        // "" = <report dir>/checkpoints; else relative to the current directory
};

// The inference benchmark (`efficientllm bench-infer`, docs/INFERENCE.md): llama-bench's
// methodology at each listed weight format, and the quality against fp32.
struct InferenceConfig {
  std::string formats = "fp32";  // comma-separated: fp32, bf16, fp16, int8, int4
  int prompt_tokens = 512;       // pp: the prompt-processing test's tokens
  int gen_tokens = 128;          // tg: the token-generation test's tokens
  int repetitions = 5;           // recorded repetitions of each test
  int warmup = 1;                // unrecorded repetitions before them
  int batch = 1;                 // sequences decoded side by side
  int quality_windows = 4;       // windows of seq_len validation tokens scored; 0: no quality
};

struct RunConfig {
  std::string name;
  ModelConfig model;
  TrainingConfig training;
  DataConfig data;
  ParallelConfig parallel;
  TopologyConfig topology;
  MetricsConfig metrics;
  CheckpointConfig checkpoint;
  InferenceConfig inference;
  nlohmann::json as_json;  // the fully resolved run (defaults filled in), as written to reports
};

struct Job {
  std::string name;
  std::string description;
  std::filesystem::path file;
  std::vector<RunConfig> runs;  // in execution order (grid: cartesian product, first key slowest)
};

// One bad input: which file, where in it (JSON pointer, "" for the whole file), what is allowed.
// what() is "FILE: POINTER: MESSAGE" (or "FILE: MESSAGE" with an empty pointer).
class JobError : public std::runtime_error {
 public:
  JobError(std::string file, std::string pointer, std::string message);
  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_, pointer_, message_;
};

// An override from the command line: "--set training.steps=50". The value is parsed as JSON
// when it is valid JSON, otherwise taken as a string.
// "--grid training.seed=1,2,3" makes the field a grid axis instead (replacing the job's axis of
// that field, or added after the job's axes): `value` then holds the JSON array of its values.
struct Override {
  std::string path;  // dotted: "training.steps"
  std::string value;
  bool grid_axis = false;
};
Override parse_override(const std::string& text);  // throws JobError (file "--set") on "a=b" without '=' etc.
// "PATH=V1,V2,..." or "PATH=[JSON array]"; each value JSON when valid, else a string. Throws
// JobError (file "--grid").
Override parse_grid_override(const std::string& text);

// The job file's names of a mapping policy ("inherit", "compact", "scatter"), for reports and for
// `efficientllm topo --policy`; parse_policy throws JobError(source, "", message) on other names.
std::string policy_name(MappingPolicy policy);
// finetune.method's value as written in a job ("lora_plus").
std::string method_name(FinetuneMethod method);
MappingPolicy parse_policy(const std::string& name, const std::string& source);

// Reads, applies overrides (to the defaults and every run), expands, validates. Throws JobError.
Job load_job(const std::filesystem::path& file, const std::vector<Override>& overrides = {});
// Same for a job given as text (tests; `file` is only used in messages and to resolve corpus paths).
Job parse_job(const std::string& text, const std::filesystem::path& file,
              const std::vector<Override>& overrides = {});

}  // namespace ellm
