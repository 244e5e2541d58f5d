// The corpus of a run as token ids (docs/DATA.md): UTF-8 text tokenized on the fly (the 256 byte
// values by default, or SentencePiece), pre-tokenized token files, or instruction JSONL packed into
// rows of seq_len + 1 tokens with a loss mask. Every file is split into a training head and a
// held-out validation tail; the sampler cuts the batches from them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/tokenizer.hpp"
#include "efficientllm/config.hpp"

namespace ellm {

struct CorpusFile {
  std::filesystem::path path;
  std::size_t tokens = 0, train_tokens = 0, val_tokens = 0;  // instructions: samples
};

// One split. A stream (text, token files): windows are cut at any offset and every target is the
// next token. Packed (instructions): `rows` rows of seq_len inputs with their own targets
// (layers::kIgnoredTarget where the loss is masked) and per-row counts.
struct TokenSplit {
  std::vector<TokenId> tokens;         // stream, or (rows, seq_len) inputs
  std::vector<TokenId> targets;        // packed only: (rows, seq_len)
  std::vector<std::int32_t> samples;   // packed only: instruction samples per row
  std::vector<std::int32_t> counted;   // packed only: targets ≥ 0 per row
  bool packed() const { return !targets.empty(); }
  std::size_t rows() const { return samples.size(); }
};

struct Corpus {
  TokenSplit train, val;
  std::vector<CorpusFile> files;
};

// Reads, validates and splits every corpus file; the data's vocabulary (the tokenizer's, or the
// token files' headers) must equal `vocab_size` (model.vocab_size). Throws JobError naming
// `job_file`, the field and the file (and the line or token index) on any bad input.
Corpus load_corpus(const DataConfig& data, int seq_len, int vocab_size, const std::string& job_file);

// The byte offset of the first invalid UTF-8 sequence, or npos when the text is valid.
std::size_t find_invalid_utf8(const std::uint8_t* text, std::size_t n);

// What a global batch holds: sequences or instruction samples, and the targets the loss counts.
struct BatchCounts {
  std::int64_t samples = 0, counted = 0;
};

// Batches for data parallelism: the global batch of a step is the same on every layout, and rank r
// of dp takes rows [r·B/dp, (r+1)·B/dp) of it, so 1 and N ranks see the same data.
class BatchSampler {
 public:
  BatchSampler(const Corpus& corpus, int seq_len, int global_batch, std::uint64_t seed);
  // tokens, targets (rows, T): `rows` rows of the step's global batch starting at row `first_row`.
  // Returns the counts of the whole global batch (the same on every rank).
  BatchCounts train_batch(int step, int first_row, int rows, int* tokens, int* targets) const;
  // Validation batch `index`: fixed windows (or packed rows) spread evenly over the split.
  BatchCounts val_batch(int index, int n_batches, int first_row, int rows, int* tokens,
                        int* targets) const;

 private:
  // Copies window (stream: start offset; packed: row) `at` of `split` into tokens, targets (T);
  // adds the window's counts.
  void cut(const TokenSplit& split, std::size_t at, int* tokens, int* targets) const;
  void count(const TokenSplit& split, std::size_t at, BatchCounts& counts) const;
  // How many windows (stream: start offsets) the split offers.
  std::size_t windows(const TokenSplit& split) const;
  const Corpus& corpus_;
  int seq_len_, global_batch_;
  std::uint64_t seed_;
};

}  // namespace ellm
