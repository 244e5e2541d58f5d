// `efficientllm tokenizer train` and `efficientllm tokenize`: train a SentencePiece model on a
// corpus, and write a pre-tokenized corpus (a token file, docs/DATA.md) with a chosen tokenizer.
#include <boost/program_options.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/subcommands.hpp"
#include "data/corpus.hpp"
#include "data/token_file.hpp"
#include "data/tokenizer.hpp"

namespace ellm::cli {
namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// Parses argv from word `skip` on (Boost takes that word for the program name); a bad flag prints the message and the options.
bool parse(int argc, char** argv, int skip, const po::options_description& desc,
           const po::positional_options_description& positional, po::variables_map& vm,
           const std::string& command) {
  try {
    po::store(po::command_line_parser(argc - skip, argv + skip).options(desc).positional(positional).run(), vm);
    po::notify(vm);
    return true;
  } catch (const po::error& e) {
    std::cerr << "efficientllm " << command << ": " << e.what() << "\n" << desc << "\n";
    return false;
  }
}

std::string quoted(const fs::path& path) {
  std::string q(1, '"');  // built up, not "\"" + ...: GCC 12 warns falsely (-Wrestrict) on that
  q += path.string();
  q += '"';
  return q;
}

// A readable, non-empty UTF-8 text file, or a message naming it and what is wrong.
std::string check_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + quoted(path) + ": " + std::strerror(errno);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (text.empty()) return quoted(path) + " is empty";
  const std::size_t bad = find_invalid_utf8(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  if (bad != std::string::npos)
    return quoted(path) + " is not UTF-8 text (invalid byte at offset " + std::to_string(bad) + ")";
  return "";
}

int train_tokenizer(int argc, char** argv) {
  SentencePieceTraining t;
  std::vector<std::string> corpus;
  std::string out;
  po::options_description desc("efficientllm tokenizer train --corpus FILE... --vocab-size N --out FILE.model");
  desc.add_options()("help,h", "show this help")(
      "corpus", po::value(&corpus)->multitoken(), "UTF-8 text files (default: the default corpus)")(
      "vocab-size", po::value(&t.vocab_size)->required(), "pieces in the model (> 256 + 3: byte fallback)")(
      "model-type", po::value(&t.model_type)->default_value("bpe"), "bpe or unigram")(
      "out", po::value(&out)->required(), "the SentencePiece model file to write")(
      "threads", po::value(&t.threads)->default_value(1), "training threads");
  po::variables_map vm;
  const bool help = std::find_if(argv, argv + argc, [](const char* a) {
                      return std::string(a) == "--help" || std::string(a) == "-h"; }) != argv + argc;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (!parse(argc, argv, 2, desc, {}, vm, "tokenizer train")) return kExitBadInput;
  const auto fail = [&](const std::string& message) {
    std::cerr << "efficientllm tokenizer train: " << message << "\n";
    return kExitBadInput;
  };
  if (t.model_type != "bpe" && t.model_type != "unigram")
    return fail("--model-type must be \"bpe\" or \"unigram\", got \"" + t.model_type + "\"");
  if (t.vocab_size < 260 || t.vocab_size > 1048576)
    return fail("--vocab-size must be in [260, 1048576] (256 byte pieces + <unk>, <s>, </s> + at least one), got " +
                std::to_string(t.vocab_size));
  if (t.threads < 1) return fail("--threads must be >= 1");
  if (corpus.empty()) t.corpus = default_corpus();
  for (const std::string& c : corpus) {
    if (c.find(',') != std::string::npos)
      return fail("--corpus \"" + c + "\": libsentencepiece takes a comma-separated list, so a path may not contain ','");
    t.corpus.push_back(c);
  }
  for (const fs::path& f : t.corpus) {
    if (const std::string error = check_text_file(f); !error.empty()) return fail("--corpus: " + error);
  }
  t.out = out;
  try {
    train_sentencepiece(t);
  } catch (const std::exception& e) {
    return fail(std::string("libsentencepiece: ") + e.what());
  }
  std::cout << "wrote " << out << " (" << t.vocab_size << " pieces, " << t.model_type << ")\n";
  return 0;
}

}  // namespace

int tokenizer_main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[2]) == "train") return train_tokenizer(argc, argv);
  if (argc >= 3 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h")) {
    std::cout << "usage: efficientllm tokenizer train --corpus FILE... --vocab-size N --out FILE.model\n";
    return 0;
  }
  std::cerr << "efficientllm tokenizer: expected the subcommand \"train\""
            << (argc >= 3 ? std::string(", got \"") + argv[2] + "\"" : std::string()) << "\n";
  return kExitBadInput;
}

int tokenize_main(int argc, char** argv) {
  std::string input, out, tokenizer;
  po::options_description desc("efficientllm tokenize TEXT_FILE --out FILE.tok [--tokenizer bytes|FILE.model]");
  desc.add_options()("help,h", "show this help")(
      "tokenizer", po::value(&tokenizer)->default_value("bytes"), "\"bytes\" or a SentencePiece model file")(
      "out", po::value(&out), "the token file to write");
  po::options_description hidden;
  hidden.add_options()("input", po::value(&input));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("input", 1);
  po::variables_map vm;
  if (!parse(argc, argv, 1, all, positional, vm, "tokenize")) return kExitBadInput;
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  const auto fail = [&](const std::string& message) {
    std::cerr << "efficientllm tokenize: " << message << "\n";
    return kExitBadInput;
  };
  if (input.empty()) return fail("missing the text file argument (TEXT_FILE)");
  if (out.empty()) return fail("missing --out FILE.tok");
  if (const std::string error = check_text_file(input); !error.empty()) return fail(error);
  try {
    TokenizerConfig config;
    if (tokenizer != "bytes") config.sentencepiece = tokenizer;
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(config, "--tokenizer", "");
    std::ifstream in(input, std::ios::binary);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<TokenId> ids;
    tok->encode(text, ids);
    write_token_file(out, ids, tok->vocab_size(), tok->name());
    std::cout << "wrote " << out << ": " << ids.size() << " tokens of " << tok->name() << " ("
              << tok->vocab_size() << ")\n";
  } catch (const std::exception& e) {  // JobError (a bad model file) or a write error
    return fail(e.what());
  }
  return 0;
}

}  // namespace ellm::cli
