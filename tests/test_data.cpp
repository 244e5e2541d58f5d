// Tokenizers, token files and instruction data (docs/DATA.md): SentencePiece trained on the
// default corpus round-trips it; a pre-tokenized corpus equals tokenizing on the fly; every class
// of bad data file gets its exact message; instruction samples are packed with their loss mask.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/corpus.hpp"
#include "data/instructions.hpp"
#include "data/token_file.hpp"
#include "data/tokenizer.hpp"
#include "layers/crossentropy.hpp"

namespace ellm {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / ("ellm_data_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path write_text(const std::string& name, const std::string& text) {
  const fs::path path = temp_dir() / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// A small SentencePiece model trained on one file of the default corpus (fast); the other files
// then exercise byte fallback.
const fs::path& sentencepiece_model() {
  static const fs::path model = [] {
    SentencePieceTraining t;
    t.corpus = {default_corpus()[2]};  // wisdom
    t.vocab_size = 400;
    t.out = temp_dir() / "sp400.model";
    train_sentencepiece(t);
    return t.out;
  }();
  return model;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const JobError& e) {
    return e.what();
  }
  return "(no JobError)";
}

TEST(SentencePiece, TrainedModelRoundTripsTheDefaultCorpus) {
  const auto tok = make_tokenizer({sentencepiece_model()}, "job.json", "/data/tokenizer");
  EXPECT_EQ(tok->vocab_size(), 400);
  EXPECT_EQ(tok->name(), "sentencepiece:sp400.model");
  for (const fs::path& file : default_corpus()) {
    const std::string text = read_text(file);
    std::vector<TokenId> ids;
    tok->encode(text, ids);
    EXPECT_LT(ids.size(), text.size()) << file;  // it does compress
    EXPECT_TRUE(tok->decode(ids) == text) << file;
  }
}

TEST(SentencePiece, MissingOrCorruptModelFileNamesIt) {
  const fs::path bad = write_text("corrupt.model", "not a model at all");
  EXPECT_EQ(message_of([&] { make_tokenizer({bad}, "job.json", "/data/tokenizer/sentencepiece"); }),
            "job.json: /data/tokenizer/sentencepiece: SentencePiece model \"" + bad.string() +
                "\" is not a SentencePiece model file (it does not parse)");
  // A missing file is caught by the job's validation first (test_config), and here again.
  const fs::path missing = temp_dir() / "missing.model";
  EXPECT_EQ(message_of([&] { make_tokenizer({missing}, "job.json", "/data/tokenizer/sentencepiece"); }),
            "job.json: /data/tokenizer/sentencepiece: cannot read SentencePiece model \"" +
                missing.string() + "\": No such file or directory");
}

// The default corpus as token files, one per text file, written with `tok`.
DataConfig token_files_of(const Tokenizer& tok, const std::string& tag) {
  DataConfig d;
  d.format = DataFormat::Tokens;
  d.corpus.clear();
  for (const fs::path& file : default_corpus()) {
    std::vector<TokenId> ids;
    tok.encode(read_text(file), ids);
    d.corpus.push_back(temp_dir() / (file.filename().string() + "." + tag + ".tok"));
    write_token_file(d.corpus.back(), ids, tok.vocab_size(), tok.name());
  }
  return d;
}

void expect_same_corpus(const DataConfig& text, const DataConfig& tokens, int vocab) {
  const Corpus a = load_corpus(text, 64, vocab, "job.json"), b = load_corpus(tokens, 64, vocab, "job.json");
  EXPECT_TRUE(a.train.tokens == b.train.tokens);
  EXPECT_TRUE(a.val.tokens == b.val.tokens);
  EXPECT_GT(a.val.tokens.size(), 1000u);
  const BatchSampler sa(a, 64, 4, 7), sb(b, 64, 4, 7);
  std::vector<int> ta(256), ga(256), tb(256), gb(256);
  sa.train_batch(3, 0, 4, ta.data(), ga.data());
  sb.train_batch(3, 0, 4, tb.data(), gb.data());
  EXPECT_EQ(ta, tb);
  EXPECT_EQ(ga, gb);
}

TEST(TokenFile, PreTokenizedEqualsOnTheFlyBytes) {
  const auto tok = make_tokenizer({}, "job.json", "/data/tokenizer");
  expect_same_corpus(DataConfig{}, token_files_of(*tok, "bytes"), 256);
}

TEST(TokenFile, PreTokenizedEqualsOnTheFlySentencePiece) {
  DataConfig text;
  text.tokenizer.sentencepiece = sentencepiece_model();
  const auto tok = make_tokenizer(text.tokenizer, "job.json", "/data/tokenizer");
  expect_same_corpus(text, token_files_of(*tok, "sp"), 400);
}

// A token file: magic, header length, header, ids of `width` bytes.
std::string token_file_bytes(const std::string& header, const std::vector<std::uint32_t>& ids, int width) {
  std::string out = "ELLMTOK1";
  for (int i = 0; i < 4; i++) out += char((header.size() >> (8 * i)) & 0xFF);
  out += header;
  for (const std::uint32_t id : ids)
    for (int i = 0; i < width; i++) out += char((id >> (8 * i)) & 0xFF);
  return out;
}

std::string token_file_error(const std::string& bytes) {
  const fs::path path = write_text("bad.tok", bytes);
  return message_of([&] { read_token_file(path, "job.json", "/data/corpus/0"); });
}

TEST(TokenFile, EveryBadFileHasItsMessage) {
  const std::string prefix = "job.json: /data/corpus/0: token file \"" + (temp_dir() / "bad.tok").string() + "\": ";
  const std::string good = R"({"version": 1, "dtype": "uint16", "vocab_size": 300, "count": 3})";
  EXPECT_EQ(token_file_error(token_file_bytes(good, {1, 299, 2}, 2)), "(no JobError)");
  EXPECT_EQ(token_file_error(token_file_bytes(good, {1, 300, 2}, 2)),
            prefix + "token 1 is 300, not below the header's vocab_size 300");
  EXPECT_EQ(token_file_error(token_file_bytes(good, {1, 2}, 2)),
            prefix + "holds 4 bytes of token ids, expected count × 2 = 6 (header count 3, dtype uint16)");
  EXPECT_EQ(token_file_error(token_file_bytes(good, {1, 2, 3}, 2) + "x"),
            prefix + "holds 7 bytes of token ids, expected count × 2 = 6 (header count 3, dtype uint16)");
  EXPECT_EQ(token_file_error("GPT2TOKS and more"),
            prefix + "not a token file: it must start with \"ELLMTOK1\" (docs/DATA.md)");
  EXPECT_EQ(token_file_error(token_file_bytes("{\"version\": 1,", {}, 2)),
            prefix + "bad header: not JSON (syntax error while parsing object key - unexpected end of input; expected string literal)");
  EXPECT_EQ(token_file_error(token_file_bytes(R"({"version": 1, "dtype": "uint16", "count": 0})", {}, 2)),
            prefix + "bad header: missing key \"vocab_size\"");
  EXPECT_EQ(token_file_error(token_file_bytes(R"({"version": 1, "dtype": "int8", "vocab_size": 9, "count": 0})", {}, 2)),
            prefix + "bad header: \"dtype\" must be \"uint16\" or \"uint32\", got \"int8\"");
  EXPECT_EQ(token_file_error(token_file_bytes(R"({"version": 2, "dtype": "uint16", "vocab_size": 9, "count": 0})", {}, 2)),
            prefix + "bad header: \"version\" must be 1, got 2");
  EXPECT_EQ(token_file_error(token_file_bytes(R"({"version": 1, "dtype": "uint16", "vocab_size": 70000, "count": 0})", {}, 2)),
            prefix + "bad header: a vocabulary of 70000 needs dtype \"uint32\"");
}

TEST(TokenFile, VocabularyMustMatchTheModel) {
  const fs::path path = write_text("v300.tok", token_file_bytes(R"({"version": 1, "dtype": "uint32", "vocab_size": 300, "count": 3})", {1, 2, 3}, 4));
  DataConfig d;
  d.format = DataFormat::Tokens;
  d.corpus = {path};
  EXPECT_EQ(message_of([&] { load_corpus(d, 2, 256, "job.json"); }),
            "job.json: /data/corpus/0: token file \"" + path.string() +
                "\": its header's vocab_size is 300 but model.vocab_size is 256; set model.vocab_size to 300");
  DataConfig text;
  text.tokenizer.sentencepiece = sentencepiece_model();
  EXPECT_EQ(message_of([&] { load_corpus(text, 64, 256, "job.json"); }),
            "job.json: /model/vocab_size: must be at least the tokenizer's vocabulary: sentencepiece:sp400.model "
            "has 400 tokens, model.vocab_size is 256; set model.vocab_size to 400");
}

std::string instruction_error(const std::string& jsonl) {
  const fs::path path = write_text("bad.jsonl", jsonl);
  const auto tok = make_tokenizer({}, "job.json", "/data/tokenizer");
  return message_of([&] { read_instructions(path, *tok, "job.json", "/data/corpus/0"); });
}

TEST(Instructions, EveryBadLineHasItsMessage) {
  const std::string at = "job.json: /data/corpus/0: instruction file \"" + (temp_dir() / "bad.jsonl").string() + "\": ";
  const std::string ok = R"({"prompt": "Hi", "response": "Hello"})";
  EXPECT_EQ(instruction_error(ok + "\n\n" + ok + "\n"), "(no JobError)");
  EXPECT_EQ(instruction_error(ok + "\n{\"prompt\": \"x\",\n"),
            at + "line 2: not valid JSON (syntax error while parsing object key - unexpected end of input; expected string literal)");
  EXPECT_EQ(instruction_error(ok + "\n\n" + R"({"prompt": "x"})"),
            at + "line 3: missing key \"response\"; a sample is {\"prompt\": \"...\", \"response\": \"...\"} or "
                 "{\"messages\": [{\"role\": ..., \"content\": ...}, ...]}");
  EXPECT_EQ(instruction_error(R"({"prompt": "x", "response": ""})"),
            at + "line 1: \"response\" is empty: a sample needs response tokens to learn from");
  EXPECT_EQ(instruction_error(R"({"prompt": "x", "response": 3})"),
            at + "line 1: \"response\" must be a string, got number");
  EXPECT_EQ(instruction_error(R"({"prompt": "x", "answer": "y"})"),
            at + "line 1: unknown key \"answer\" (allowed: prompt, response, messages)");
  EXPECT_EQ(instruction_error(R"({"messages": [{"role": "user", "content": "x"}]})"),
            at + "line 1: no non-empty \"assistant\" message: a sample needs response tokens to learn from");
  EXPECT_EQ(instruction_error(R"({"messages": [{"role": "bot", "content": "x"}]})"),
            at + "line 1: messages[0].role must be \"system\", \"user\" or \"assistant\", got \"bot\"");
  EXPECT_EQ(instruction_error("[1, 2]"),
            at + "line 1: must be an object, {\"prompt\": \"...\", \"response\": \"...\"} or "
                 "{\"messages\": [{\"role\": ..., \"content\": ...}, ...]}; got array");
  EXPECT_EQ(instruction_error("\n \n"), at + "holds no samples");
}

TEST(Instructions, TemplateLearnsTheAssistantTokensOnly) {
  const fs::path path = write_text("chat.jsonl",
      R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]})");
  const auto tok = make_tokenizer({}, "job.json", "/data/tokenizer");
  const std::vector<InstructionSample> s = read_instructions(path, *tok, "job.json", "/data/corpus/0");
  ASSERT_EQ(s.size(), 1u);
  const std::string text = "<|system|>\nS\n<|user|>\nU\n<|assistant|>\nA";
  ASSERT_EQ(s[0].tokens.size(), text.size() + 1);
  EXPECT_EQ(tok->decode({s[0].tokens.begin(), s[0].tokens.end() - 1}), text);
  EXPECT_EQ(s[0].tokens.back(), 0);  // the end-of-sequence id (NUL for bytes)
  std::string learned;
  for (std::size_t i = 0; i < s[0].tokens.size(); i++)
    if (s[0].learned[i]) learned += char(s[0].tokens[i]);
  EXPECT_EQ(learned, std::string("A") + '\0');
}

// Packed: whole samples per row, targets masked outside responses,
// and the batch counts what the loss will count.
TEST(Instructions, PackedRowsMaskPromptsAndCountSamples) {
  std::string jsonl;
  for (int i = 0; i < 10; i++) jsonl += R"({"prompt": "p)" + std::to_string(i) + R"(", "response": "r"})" + "\n";
  // one sample is "<|user|>\npN\n<|assistant|>\nr" + EOS = 27 tokens; seq_len 63: two per row
  DataConfig d;
  d.format = DataFormat::Instructions;
  d.corpus = {write_text("ten.jsonl", jsonl)};
  d.val_fraction = 0.2;
  const Corpus c = load_corpus(d, 63, 256, "job.json");
  ASSERT_EQ(c.train.rows(), 4u);  // 8 training samples, 2 per row
  ASSERT_EQ(c.val.rows(), 1u);
  for (std::size_t r = 0; r < 4; r++) {
    EXPECT_EQ(c.train.samples[r], 2);
    EXPECT_EQ(c.train.counted[r], 4);  // per sample: "r" and the end of sequence
  }
  const TokenId* targets = c.train.targets.data();
  int counted = 0;
  for (int t = 0; t < 63; t++) {
    if (targets[t] == layers::kIgnoredTarget) continue;
    counted++;
    EXPECT_TRUE(targets[t] == 'r' || targets[t] == 0) << t;
    EXPECT_EQ(targets[t], t + 1 < 63 ? c.train.tokens[t + 1] : targets[t]);
  }
  EXPECT_EQ(counted, 4);
  const BatchSampler s(c, 63, 4, 1);
  std::vector<int> tok(2 * 63), tgt(2 * 63);
  const BatchCounts counts = s.train_batch(0, 2, 2, tok.data(), tgt.data());
  EXPECT_EQ(counts.samples, 8);   // the whole global batch: 4 rows of 2 samples
  EXPECT_EQ(counts.counted, 16);
}

TEST(Instructions, APromptLongerThanARowIsRefused) {
  DataConfig d;
  d.format = DataFormat::Instructions;
  d.corpus = {write_text("long.jsonl", R"({"prompt": ")" + std::string(100, 'x') + R"(", "response": "r"})" + "\n")};
  EXPECT_EQ(message_of([&] { load_corpus(d, 32, 256, "job.json"); }),
            "job.json: /data/corpus/0: instruction file \"" + d.corpus[0].string() +
                "\": line 1: no response token falls within its first seq_len + 1 = 33 tokens (it has "
                "126); raise model.seq_len or shorten the prompt");
}

}  // namespace
}  // namespace ellm
