#include "data/corpus.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "data/instructions.hpp"
#include "data/token_file.hpp"
#include "layers/crossentropy.hpp"
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

std::string pointer_of(std::size_t file) { return "/data/corpus/" + std::to_string(file); }

// Appends a file's ids to the splits: its tail fraction to validation.
void split_into(Corpus& corpus, const std::filesystem::path& path, const std::vector<TokenId>& ids,
                double val_fraction) {
  const std::size_t val = std::size_t(double(ids.size()) * val_fraction);
  const std::size_t train = ids.size() - val;
  corpus.train.tokens.insert(corpus.train.tokens.end(), ids.begin(), ids.begin() + train);
  corpus.val.tokens.insert(corpus.val.tokens.end(), ids.begin() + train, ids.end());
  corpus.files.push_back({path, ids.size(), train, val});
}

void load_text(Corpus& corpus, const DataConfig& data, const Tokenizer& tok, const std::string& job_file) {
  for (std::size_t i = 0; i < data.corpus.size(); i++) {
    const std::filesystem::path& path = data.corpus[i];
    const std::vector<std::uint8_t> bytes = read_file(path, job_file, pointer_of(i));
    const std::size_t bad = find_invalid_utf8(bytes.data(), bytes.size());
    if (bad != std::string::npos) {
      throw JobError(job_file, pointer_of(i),
                     "corpus file \"" + path.string() + "\" is not UTF-8 text (invalid byte at offset " +
                         std::to_string(bad) + ")");
    }
    std::vector<TokenId> ids;
    ids.reserve(bytes.size());
    tok.encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), ids);
    split_into(corpus, path, ids, data.val_fraction);
  }
}

void load_token_files(Corpus& corpus, const DataConfig& data, int vocab_size, const std::string& job_file) {
  for (std::size_t i = 0; i < data.corpus.size(); i++) {
    const TokenFile file = read_token_file(data.corpus[i], job_file, pointer_of(i));
    if (file.vocab_size > vocab_size) {  // a larger model vocabulary (padded, as Qwen2's) is fine
      throw JobError(job_file, pointer_of(i),
                     "token file \"" + data.corpus[i].string() + "\": its header's vocab_size is " +
                         std::to_string(file.vocab_size) + " but model.vocab_size is " +
                         std::to_string(vocab_size) + "; set model.vocab_size to " +
                         std::to_string(file.vocab_size));
    }
    split_into(corpus, data.corpus[i], file.ids, data.val_fraction);
  }
}

// Packs whole samples, in order, into rows of seq_len + 1 tokens; a sample that does not fit in
// what is left of a row starts the next one, and the rest of the row is padding (end-of-sequence
// ids whose targets are ignored). Samples longer than a row were cut to one before.
class Packer {
 public:
  Packer(TokenSplit& split, int seq_len, TokenId pad) : split_(split), T_(seq_len), pad_(pad) {}
  void add(const InstructionSample& s) {
    const std::size_t n = std::min(s.tokens.size(), std::size_t(T_) + 1);
    if (fill_ > 0 && fill_ + n > std::size_t(T_) + 1) flush();
    row_.insert(row_.end(), s.tokens.begin(), s.tokens.begin() + n);
    learned_.insert(learned_.end(), s.learned.begin(), s.learned.begin() + n);
    fill_ += n;
    samples_++;
  }
  void flush() {
    if (fill_ == 0) return;
    row_.resize(T_ + 1, pad_);
    learned_.resize(T_ + 1, 0);
    int counted = 0;
    for (int t = 0; t < T_; t++) {
      split_.tokens.push_back(row_[t]);
      const bool learn = learned_[t + 1] != 0;  // position t predicts token t + 1
      split_.targets.push_back(learn ? row_[t + 1] : layers::kIgnoredTarget);
      counted += learn;
    }
    split_.samples.push_back(samples_);
    split_.counted.push_back(counted);
    row_.clear();
    learned_.clear();
    fill_ = 0;
    samples_ = 0;
  }

 private:
  TokenSplit& split_;
  int T_;
  TokenId pad_;
  std::vector<TokenId> row_;
  std::vector<std::uint8_t> learned_;
  std::size_t fill_ = 0;
  int samples_ = 0;
};

void load_instructions(Corpus& corpus, const DataConfig& data, const Tokenizer& tok, int seq_len,
                       const std::string& job_file) {
  Packer train(corpus.train, seq_len, tok.eos_id()), val(corpus.val, seq_len, tok.eos_id());
  for (std::size_t i = 0; i < data.corpus.size(); i++) {
    const std::filesystem::path& path = data.corpus[i];
    const std::vector<InstructionSample> samples = read_instructions(path, tok, job_file, pointer_of(i));
    const std::size_t n_val = std::size_t(double(samples.size()) * data.val_fraction);
    for (std::size_t k = 0; k < samples.size(); k++) {
      const InstructionSample& s = samples[k];
      // A sample cut to one row must keep a learned token that is predicted (position ≥ 1).
      const std::size_t kept = std::min(s.tokens.size(), std::size_t(seq_len) + 1);
      if (std::find(s.learned.begin() + 1, s.learned.begin() + kept, 1) == s.learned.begin() + kept) {
        throw JobError(job_file, pointer_of(i),
                       "instruction file \"" + path.string() + "\": line " + std::to_string(s.line) +
                           ": no response token falls within its first seq_len + 1 = " +
                           std::to_string(seq_len + 1) + " tokens (it has " +
                           std::to_string(s.tokens.size()) +
                           "); raise model.seq_len or shorten the prompt");
      }
      (k + n_val < samples.size() ? train : val).add(s);
    }
    corpus.files.push_back({path, samples.size(), samples.size() - n_val, n_val});
  }
  train.flush();
  val.flush();
  std::size_t n_train = 0, n_val = 0;
  for (const CorpusFile& f : corpus.files) {
    n_train += f.train_tokens;
    n_val += f.val_tokens;
  }
  if (n_train == 0 || n_val == 0) {
    throw JobError(job_file, "/data",
                   "the instruction data splits into " + std::to_string(n_train) + " training and " +
                       std::to_string(n_val) +
                       " validation samples; each needs at least one (add samples or raise "
                       "data.val_fraction)");
  }
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

Corpus load_corpus(const DataConfig& data, int seq_len, int vocab_size, const std::string& job_file) {
  Corpus corpus;
  if (data.format == DataFormat::Tokens) {
    load_token_files(corpus, data, vocab_size, job_file);
  } else {
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(
        data.tokenizer, job_file, data.tokenizer.bytes() ? "/data/tokenizer" : "/data/tokenizer/sentencepiece");
    if (tok->vocab_size() > vocab_size) {
      throw JobError(job_file, "/model/vocab_size",
                     "must be at least the tokenizer's vocabulary: " + tok->name() + " has " +
                         std::to_string(tok->vocab_size()) + " tokens, model.vocab_size is " +
                         std::to_string(vocab_size) + "; set model.vocab_size to " +
                         std::to_string(tok->vocab_size()));
    }
    if (data.format == DataFormat::Text) {
      load_text(corpus, data, *tok, job_file);
    } else {
      load_instructions(corpus, data, *tok, seq_len, job_file);
      return corpus;
    }
  }
  const std::size_t need = std::size_t(seq_len) + 1;
  if (corpus.train.tokens.size() < need || corpus.val.tokens.size() < need) {
    throw JobError(job_file, "/data",
                   "the corpus splits into " + std::to_string(corpus.train.tokens.size()) +
                       " training and " + std::to_string(corpus.val.tokens.size()) +
                       " validation tokens; each needs at least seq_len + 1 = " + std::to_string(need) +
                       " (add text or change data.val_fraction)");
  }
  return corpus;
}

BatchSampler::BatchSampler(const Corpus& corpus, int seq_len, int global_batch, std::uint64_t seed)
    : corpus_(corpus), seq_len_(seq_len), global_batch_(global_batch), seed_(seed) {}

std::size_t BatchSampler::windows(const TokenSplit& split) const {
  return split.packed() ? split.rows() : split.tokens.size() - seq_len_;
}

void BatchSampler::cut(const TokenSplit& split, std::size_t at, int* tokens, int* targets) const {
  const int T = seq_len_;
  if (split.packed()) {
    std::copy_n(split.tokens.begin() + at * T, T, tokens);
    std::copy_n(split.targets.begin() + at * T, T, targets);
    return;
  }
  const TokenId* text = split.tokens.data() + at;
  for (int t = 0; t < T; t++) {
    tokens[t] = text[t];
    targets[t] = text[t + 1];
  }
}

void BatchSampler::count(const TokenSplit& split, std::size_t at, BatchCounts& counts) const {
  counts.samples += split.packed() ? split.samples[at] : 1;
  counts.counted += split.packed() ? split.counted[at] : seq_len_;
}

BatchCounts BatchSampler::train_batch(int step, int first_row, int rows, int* tokens, int* targets) const {
  // Every rank draws the whole global batch's windows and keeps its own rows: identical data on
  // any dp layout at the cost of a few random numbers (and the global batch's counts for free).
  Rng rng(derive_seed(seed_, 1'000'000 + std::uint64_t(step)));
  const std::size_t positions = windows(corpus_.train);
  BatchCounts counts;
  for (int row = 0; row < global_batch_; row++) {
    const std::size_t start = rng.below(positions);
    count(corpus_.train, start, counts);
    if (row < first_row || row >= first_row + rows) continue;
    const std::size_t k = std::size_t(row - first_row) * seq_len_;
    cut(corpus_.train, start, tokens + k, targets + k);
  }
  return counts;
}

BatchCounts BatchSampler::val_batch(int index, int n_batches, int first_row, int rows, int* tokens,
                                    int* targets) const {
  const std::size_t total = std::size_t(n_batches) * global_batch_;
  const std::size_t last = windows(corpus_.val) - 1;  // last valid start (or row)
  BatchCounts counts;
  for (int r = 0; r < global_batch_; r++) {
    const std::size_t w = std::size_t(index) * global_batch_ + r;
    const std::size_t start = total > 1 ? last * w / (total - 1) : 0;
    count(corpus_.val, start, counts);
    if (r < first_row || r >= first_row + rows) continue;
    cut(corpus_.val, start, tokens + std::size_t(r - first_row) * seq_len_,
        targets + std::size_t(r - first_row) * seq_len_);
  }
  return counts;
}

}  // namespace ellm
