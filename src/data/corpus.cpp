#include "data/corpus.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "util/rng.hpp"

namespace ellm {
namespace {

std::vector<std::uint8_t> read_file(const std::filesystem::path& path, const std::string& job_file,
                                    const std::string& pointer) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw JobError(job_file, pointer,
                   "cannot read corpus file \"" + path.string() + "\": " + std::strerror(errno));
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Length of the UTF-8 sequence led by byte b, or 0 when b cannot lead one.
int utf8_length(std::uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

}  // namespace

std::size_t find_invalid_utf8(const std::uint8_t* text, std::size_t n) {
  for (std::size_t i = 0; i < n;) {
    const int len = utf8_length(text[i]);
    if (len == 0 || i + len > n) return i;
    for (int k = 1; k < len; k++) {
      if ((text[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string::npos;
}

Corpus load_corpus(const DataConfig& data, int seq_len, const std::string& job_file) {
  Corpus corpus;
  for (std::size_t i = 0; i < data.corpus.size(); i++) {
    const std::string pointer = "/data/corpus/" + std::to_string(i);
    const std::filesystem::path& path = data.corpus[i];
    const std::vector<std::uint8_t> bytes = read_file(path, job_file, pointer);
    const std::size_t bad = find_invalid_utf8(bytes.data(), bytes.size());
    if (bad != std::string::npos) {
      throw JobError(job_file, pointer,
                     "corpus file \"" + path.string() + "\" is not UTF-8 text (invalid byte at offset " +
                         std::to_string(bad) + ")");
    }
    const std::size_t val = std::size_t(double(bytes.size()) * data.val_fraction);
    const std::size_t train = bytes.size() - val;
    corpus.train.insert(corpus.train.end(), bytes.begin(), bytes.begin() + train);
    corpus.val.insert(corpus.val.end(), bytes.begin() + train, bytes.end());
    corpus.files.push_back({path, bytes.size(), train, val});
  }
  const std::size_t need = std::size_t(seq_len) + 1;
  if (corpus.train.size() < need || corpus.val.size() < need) {
    throw JobError(job_file, "/data",
                   "the corpus splits into " + std::to_string(corpus.train.size()) +
                       " training and " + std::to_string(corpus.val.size()) +
                       " validation bytes; each needs at least seq_len + 1 = " + std::to_string(need) +
                       " (add text or change data.val_fraction)");
  }
  return corpus;
}

BatchSampler::BatchSampler(const Corpus& corpus, int seq_len, int global_batch, std::uint64_t seed)
    : corpus_(corpus), seq_len_(seq_len), global_batch_(global_batch), seed_(seed) {}

void BatchSampler::cut(const std::vector<std::uint8_t>& text, std::size_t start, int T, int* tokens,
                       int* targets) {
  for (int t = 0; t < T; t++) {
    tokens[t] = text[start + t];
    targets[t] = text[start + t + 1];
  }
}

void BatchSampler::train_batch(int step, int first_row, int rows, int* tokens, int* targets) const {
  // Every rank draws the whole global batch's offsets and keeps its own rows: identical data on
  // any dp layout at the cost of a few random numbers.
  Rng rng(derive_seed(seed_, 1'000'000 + std::uint64_t(step)));
  const std::size_t positions = corpus_.train.size() - seq_len_;
  for (int row = 0; row < first_row + rows; row++) {
    const std::size_t start = rng.below(positions);
    if (row < first_row) continue;
    const std::size_t k = std::size_t(row - first_row) * seq_len_;
    cut(corpus_.train, start, seq_len_, tokens + k, targets + k);
  }
}

void BatchSampler::val_batch(int index, int n_batches, int first_row, int rows, int* tokens,
                             int* targets) const {
  const std::size_t windows = std::size_t(n_batches) * global_batch_;
  const std::size_t span = corpus_.val.size() - seq_len_ - 1;  // last valid start
  for (int r = 0; r < rows; r++) {
    const std::size_t w = std::size_t(index) * global_batch_ + first_row + r;
    const std::size_t start = windows > 1 ? span * w / (windows - 1) : 0;
    const std::size_t k = std::size_t(r) * seq_len_;
    cut(corpus_.val, start, seq_len_, tokens + k, targets + k);
  }
}

}  // namespace ellm
