// Text corpus → byte tokens (the vocabulary is the 256 byte values), split per file into a
// training head and a held-out validation tail, and the sampler that cuts batches from them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "efficientllm/config.hpp"

namespace ellm {

struct CorpusFile {
  std::filesystem::path path;
  std::size_t bytes = 0, train_bytes = 0, val_bytes = 0;
};

struct Corpus {
  std::vector<std::uint8_t> train, val;  // concatenation of every file's head / tail
  std::vector<CorpusFile> files;
};

// Reads and splits every corpus file. Throws JobError naming `job_file` and the field when a file
// is unreadable, is not UTF-8 text, or when a split is too short for one sequence of seq_len + 1.
Corpus load_corpus(const DataConfig& data, int seq_len, const std::string& job_file);

// The byte offset of the first invalid UTF-8 sequence, or npos when the text is valid.
std::size_t find_invalid_utf8(const std::uint8_t* text, std::size_t n);

// Batches for data parallelism: the global batch of a step is the same on every layout, and rank r
// of dp takes rows [r·B/dp, (r+1)·B/dp) of it, so 1 and N ranks see the same data.
class BatchSampler {
 public:
  BatchSampler(const Corpus& corpus, int seq_len, int global_batch, std::uint64_t seed);
  // tokens, targets (rows, T): `rows` rows of the step's global batch starting at row `first_row`.
  void train_batch(int step, int first_row, int rows, int* tokens, int* targets) const;
  // Validation batch `index`: fixed windows spread evenly over the validation split.
  void val_batch(int index, int n_batches, int first_row, int rows, int* tokens, int* targets) const;

 private:
  static void cut(const std::vector<std::uint8_t>& text, std::size_t start, int T, int* tokens,
                  int* targets);
  const Corpus& corpus_;
  int seq_len_, global_batch_;
  std::uint64_t seed_;
};

}  // namespace ellm
