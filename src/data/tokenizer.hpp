// Tokenizers of text and instruction corpora (docs/DATA.md): the 256 byte values (the default),
// or a SentencePiece model file through Debian's libsentencepiece — the tokenizer.model of
// Llama-2, TinyLlama or Mistral, or one trained on a corpus by train_sentencepiece.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "efficientllm/config.hpp"

namespace ellm {

using TokenId = std::int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int vocab_size() const = 0;
  // Appends the ids of `text` to `out`.
  virtual void encode(std::string_view text, std::vector<TokenId>& out) const = 0;
  virtual std::string decode(const std::vector<TokenId>& ids) const = 0;
  // The end-of-sequence id that closes every packed instruction sample.
  virtual TokenId eos_id() const = 0;
  // "bytes", or "sentencepiece:<file name>": recorded in token-file headers.
  virtual std::string name() const = 0;
};

// The configured tokenizer. A SentencePiece model that cannot be loaded throws JobError(source,
// pointer, message naming the file and libsentencepiece's reason).
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config, const std::string& source,
                                          const std::string& pointer);

struct SentencePieceTraining {
  std::vector<std::filesystem::path> corpus;
  int vocab_size = 8000;
  std::string model_type = "bpe";  // bpe | unigram
  std::filesystem::path out;       // writes out (the .model file; no .vocab beside it)
  int threads = 1;
};
// Trains a SentencePiece model that round-trips any UTF-8 text exactly: no normalisation, spaces
// kept as written, and byte fallback for characters outside the vocabulary. Throws
// std::runtime_error with libsentencepiece's message.
void train_sentencepiece(const SentencePieceTraining& training);

}  // namespace ellm
