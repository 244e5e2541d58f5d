// Pre-tokenized corpora (docs/DATA.md, "Token files"): a flat little-endian array of uint16 or
// uint32 token ids after a small JSON header naming the vocabulary, so that any tokenizer a
// user prefers can feed the suite. Layout:
//   bytes 0..7   magic "ELLMTOK1"
//   bytes 8..11  H, the header's length (uint32, little-endian)
//   H bytes      JSON: {"version": 1, "dtype": "uint16"|"uint32", "vocab_size": V, "count": N,
//                       "tokenizer": "..."} ("tokenizer" optional, informative)
//   N ids        dtype each, little-endian, every one < V
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/tokenizer.hpp"

namespace ellm {

struct TokenFile {
  int vocab_size = 0;
  std::string tokenizer;  // as the header names it ("" when absent)
  std::vector<TokenId> ids;
};

// Reads and validates a whole token file: magic, header, size (count × dtype bytes exactly) and
// every id < vocab_size. Throws JobError(source, pointer, message naming the file and what was
// expected; a bad id by its index).
TokenFile read_token_file(const std::filesystem::path& path, const std::string& source,
                          const std::string& pointer);

// Writes ids as uint16 when the vocabulary fits, else uint32. Throws std::runtime_error.
void write_token_file(const std::filesystem::path& path, const std::vector<TokenId>& ids,
                      int vocab_size, const std::string& tokenizer);

}  // namespace ellm
