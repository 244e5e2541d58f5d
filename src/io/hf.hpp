// Hugging Face checkpoints: a directory with config.json and model.safetensors (or a sharded
// model.safetensors.index.json) for LlamaForCausalLM, Qwen2ForCausalLM or GPTNeoXForCausalLM.
// Import reads the config into a ModelConfig (refusing, by key, anything the model here does not
// compute exactly as Hugging Face does) and the tensors into the parameter arena; export writes
// the same layout back. The name mapping per architecture is in docs/HF_IMPORT.md.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm::hf {

enum class Arch { Llama, Qwen2, GPTNeoX };
const char* arch_name(Arch arch);  // "LlamaForCausalLM", "Qwen2ForCausalLM", "GPTNeoXForCausalLM"

// One bad input. what() is "FILE: WHERE: MESSAGE": WHERE is a JSON pointer into config.json
// ("/rope_scaling") or "tensor 'NAME'"; "FILE: MESSAGE" when it is empty.
class Error : public std::runtime_error {
 public:
  Error(std::string file, std::string where, std::string message);
  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_, where_, message_;
};

// What config.json describes. `model` has every architecture field set; seq_len and init_std
// are left at their defaults (the job chooses them).
struct Config {
  Arch arch = Arch::Llama;
  ModelConfig model;
  int max_positions = 0;    // max_position_embeddings
  std::string torch_dtype;  // "float32", "bfloat16", "float16", or "" when absent
};
Config read_config(const std::filesystem::path& dir);

// Every tensor the config needs is in the directory's safetensors, with the config's shape and
// dtype, and there is no other (the listed non-parameter buffers aside). Throws Error.
void check_weights(const std::filesystem::path& dir, const Config& config);

// This rank's shard of every tensor of `params` (declared for config.model) from the directory.
template <class T>
void load_weights(const std::filesystem::path& dir, const Config& config, const ArenaLayout& params,
                  T* arena);

// The architecture a model of ours exports as; throws Error("", "/model/FIELD", why) for a model
// no supported architecture describes.
Arch export_arch(const ModelConfig& m);

// The config.json that read_config turns back into `m` (what Hugging Face reads, too).
nlohmann::ordered_json config_json(const ModelConfig& m, Arch arch, int max_positions);

// A range of rows of one of our weights (full, tp = 1): what a fine-tuning adapter adapts.
struct RowRange {
  std::string tensor;  // our name ("h.0.attn.kv.w")
  int row0 = 0, rows = 0;
};
// The Hugging Face module (for PEFT's adapter names: "model.layers.0.self_attn.v_proj") whose
// whole weight each range is, in the architecture `m` exports as. Throws Error("", "", why) for a
// range that is only part of a Hugging Face weight (GPT-NeoX's fused query_key_value).
std::vector<std::string> modules_of(const ModelConfig& m, const std::vector<RowRange>& ranges);
// The linear modules' own names (the last part of their path) in an architecture's blocks.
std::vector<std::string> linear_module_names(Arch arch);

// Writes dir/config.json and dir/model.safetensors (F32) for `m`, from the full (tp = 1) tensors
// of our names. max_positions: the config's max_position_embeddings.
void write_model(const std::filesystem::path& dir, const ModelConfig& m, int max_positions,
                 const std::map<std::string, std::vector<float>>& full);

}  // namespace ellm::hf
