#include "data/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <unordered_map>

namespace ellm {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  int vocab_size() const override { return 256; }
  void encode(std::string_view text, std::vector<TokenId>& out) const override {
    for (const char c : text) out.push_back(TokenId(static_cast<unsigned char>(c)));
  }
  std::string decode(const std::vector<TokenId>& ids) const override {
    std::string text;
    for (const TokenId id : ids) text += static_cast<char>(id);
    return text;
  }
  TokenId eos_id() const override { return 0; }  // NUL: never part of a text sample
  std::string name() const override { return "bytes"; }
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::filesystem::path& file, const std::string& source,
                         const std::string& pointer)
      : file_(file) {
    std::string quoted(1, '"');  // not "\"" + ...: GCC 12 warns falsely (-Wrestrict) on that
    (quoted += file.string()) += '"';
    if (!std::ifstream(file, std::ios::binary))
      throw JobError(source, pointer, "cannot read SentencePiece model " + quoted + ": " + std::strerror(errno));
    // libsentencepiece's own message names its source line: the one thing it can mean here is a
    // file that is not a model.
    if (!sp_.Load(file.string()).ok()) {
      throw JobError(source, pointer, "SentencePiece model " + quoted +
                                          " is not a SentencePiece model file (it does not parse)");
    }
    if (sp_.eos_id() < 0) {
      throw JobError(source, pointer, "SentencePiece model \"" + file.string() +
                                          "\" has no end-of-sequence piece (eos_id = -1); it is "
                                          "needed to separate packed samples");
    }
  }
  int vocab_size() const override { return sp_.GetPieceSize(); }
  void encode(std::string_view text, std::vector<TokenId>& out) const override {
    std::vector<int> ids;
    const sentencepiece::util::Status status = sp_.Encode(text, &ids);
    if (!status.ok()) throw std::runtime_error("SentencePiece encode: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }
  std::string decode(const std::vector<TokenId>& ids) const override {
    std::string text;
    const sentencepiece::util::Status status =
        sp_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    if (!status.ok()) throw std::runtime_error("SentencePiece decode: " + status.ToString());
    return text;
  }
  TokenId eos_id() const override { return sp_.eos_id(); }
  std::string name() const override { return "sentencepiece:" + file_.filename().string(); }

 private:
  std::filesystem::path file_;
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config, const std::string& source,
                                          const std::string& pointer) {
  if (config.bytes()) return std::make_unique<ByteTokenizer>();
  return std::make_unique<SentencePieceTokenizer>(config.sentencepiece, source, pointer);
}

void train_sentencepiece(const SentencePieceTraining& t) {
  std::string inputs;  // libsentencepiece takes a comma-separated list
  for (const auto& f : t.corpus) {
    if (!inputs.empty()) inputs += ',';
    inputs += f.string();
  }
  // identity normalisation + spaces as written + byte fallback: decode(encode(text)) == text
  const std::unordered_map<std::string, std::string> args = {
      {"input", inputs},
      {"model_prefix", ""},
      {"vocab_size", std::to_string(t.vocab_size)},
      {"model_type", t.model_type},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"num_threads", std::to_string(t.threads)},
      {"minloglevel", "2"}};
  std::string model;
  const sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(args, nullptr, &model);
  if (!status.ok()) throw std::runtime_error(status.ToString());
  std::ofstream out(t.out, std::ios::binary);
  out << model;
  if (!out.flush()) throw std::runtime_error("cannot write \"" + t.out.string() + "\"");
}

}  // namespace ellm
