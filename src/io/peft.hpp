// Fine-tuning adapters alone, in Hugging Face PEFT's layout (docs/PEFT.md): a directory with
// adapter_config.json (peft_type "LORA", r, lora_alpha, target_modules, use_rslora, use_dora, …)
// and adapter_model.safetensors holding, per adapted Hugging Face module M,
//   base_model.model.M.lora_A.weight (r, in)   base_model.model.M.lora_B.weight (out, r)
//   base_model.model.M.lora_magnitude_vector (out)   (DoRA only)
// with M the module the adapter's base rows are in Hugging Face's layout (io/hf.hpp: the
// architecture the model exports as). The tensors are whole (tp = 1) and F32.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"
#include "model/tensor.hpp"

namespace ellm::peft {

inline constexpr const char* kConfigFile = "adapter_config.json";
inline constexpr const char* kWeightsFile = "adapter_model.safetensors";

// PEFT's name of every adapter tensor of `params` (model m's layout), by our name. Throws
// hf::Error when a target has no Hugging Face module of its own (GPT-NeoX's fused q, k, v) or the
// model exports as no Hugging Face architecture.
std::map<std::string, std::string> tensor_names(const ModelConfig& m, const ArenaLayout& params);

// Writes dir/adapter_config.json and dir/adapter_model.safetensors from the full (tp = 1) adapter
// tensors of `params`, by our names. base_model: adapter_config's base_model_name_or_path ("":
// null). Throws st::FileError when a file cannot be written.
void write_adapter(const std::filesystem::path& dir, const ModelConfig& m, const ArenaLayout& params,
                   const std::map<std::string, std::vector<float>>& full, const std::string& base_model);

// Checks the adapter in `dir` against the model m and its finetune section: adapter_config.json
// agrees with the job (peft_type, r, lora_alpha, use_dora, use_rslora, PiSSA's init, the
// target modules, which must be the base's) and adapter_model.safetensors holds exactly the
// tensors the model adapts, each with its shape. Throws st::FileError naming the file, the JSON
// pointer or tensor, and what was expected.
void check_adapter(const std::filesystem::path& dir, const ModelConfig& m);

// This rank's shard of every adapter tensor of `params` from dir's file (which check_adapter
// accepted): over the adapters' declared start (GPT::init_adapters, which for PiSSA also made
// the residual base the saved adapter is relative to).
template <class T>
void load_adapter(const std::filesystem::path& dir, const ModelConfig& m, const ArenaLayout& params, T* arena);

}  // namespace ellm::peft
