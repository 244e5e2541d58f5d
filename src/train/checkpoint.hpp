// Checkpoints of a training run (docs/CHECKPOINTS.md): one safetensors file holding every
// parameter under its declared name with its full (tp = 1) shape, optionally the AdamW moments
// ("adamw.m.<name>", "adamw.v.<name>", full shapes too), and in __metadata__ the run's config,
// the step, the data position, the RNG state and the dp × tp × ep layout it was saved under.
// Whole tensors make a checkpoint independent of the layout: any dp × tp × ep (ZeRO-1 or not)
// loads it by cutting its own shards out.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"
#include "io/safetensors.hpp"
#include "model/gpt.hpp"
#include "mpi/grid.hpp"
#include "train/optimizer.hpp"

namespace ellm {

inline constexpr const char* kCheckpointFormat = "efficientllm-checkpoint";
inline constexpr int kCheckpointVersion = 1;

// What a resume starts from, once check_resume has accepted the file.
struct ResumePoint {
  int step = 0;                    // optimizer steps already taken: the next step's index
  std::vector<std::string> notes;  // training settings that differ from the saving run's
};

// Checks a checkpoint against the run that is to resume from it, before any work starts: the
// format and version, the saving run's model section equal to this one's, every declared tensor
// and both AdamW moments of every trainable one present in F32 with its full shape, nothing
// else in the file, and a step short of training.steps. Throws st::FileError naming the file,
// the tensor or metadata key, and what was expected.
ResumePoint check_resume(const st::Reader& ckpt, const RunConfig& run);

// Checks a checkpoint whose weights start `run`'s model (model.init_from: fine-tuning or continued
// pretraining from an earlier run): the format, and every declared tensor present in F32 with its
// full shape (fine-tuning adapters may be absent: a base model's checkpoint); AdamW moments are ignored (the run starts its own optimizer at step 0), any other
// tensor the model does not have is refused. The saving run's config may differ otherwise.
void check_init_from(const st::Reader& ckpt, const RunConfig& run);

// The file a checkpoint of `run` at `step` goes to: DIR/<run name>/step-<step, 6 digits>.safetensors.
std::filesystem::path checkpoint_file(const std::filesystem::path& dir, const RunConfig& run, int step);
// The checkpoint `--resume PATH` means: PATH itself, or in a directory the step-*.safetensors with
// the highest step. Throws st::FileError when a directory holds none.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

// Collective over `world` (every rank of the run): gathers the whole tensors to the root, which
// writes the file atomically. Throws std::runtime_error on every rank when the write fails.
void save_checkpoint(const std::filesystem::path& file, const RunConfig& run, int step,
                     const GPT<float>& model, AdamW& opt, const mpi::ProcessGrid& grid,
                     mpi::Comm& world);

// This rank's shards of the parameters and of its AdamW moments, and the optimizer's step count,
// from a checkpoint check_resume accepted (no communication), in one pass over the file that also
// verifies the checksum when the reader was opened with st::Checksum::verify_on_load (a mismatch
// throws st::FileError; the arenas then hold unverified data).
void load_checkpoint(const st::Reader& ckpt, GPT<float>& model, AdamW& opt);
// This rank's shards of the parameters alone, from a checkpoint check_init_from (or check_resume)
// accepted (no communication), the same way.
void load_weights(const st::Reader& ckpt, GPT<float>& model);
// The same into any arena of `params`'s layout (the inference engine's).
void load_weights(const st::Reader& ckpt, const ArenaLayout& params, float* arena);

}  // namespace ellm
