#include "data/token_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "data/json_error.hpp"

namespace ellm {
namespace {

constexpr char kMagic[9] = "ELLMTOK1";
constexpr std::size_t kMagicBytes = 8, kLengthBytes = 4;

std::uint64_t little_endian(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

// The header's fields, each checked; `fail` throws.
template <class Fail>
nlohmann::json parse_header(const std::string& text, const Fail& fail) {
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999999
    fail("bad header: not JSON (" + json_error_text(e) + ")");
  }
  if (!h.is_object()) fail("bad header: must be a JSON object");
  const auto require = [&](const char* key, bool ok, const char* expected) {
    if (!h.contains(key)) fail(std::string("bad header: missing key \"") + key + "\"");
    if (!ok) fail(std::string("bad header: \"") + key + "\" must be " + expected + ", got " + h[key].dump());
  };
  require("version", h.contains("version") && h["version"] == 1, "1");
  require("dtype", h.contains("dtype") && (h["dtype"] == "uint16" || h["dtype"] == "uint32"),
          "\"uint16\" or \"uint32\"");
  require("vocab_size", h.contains("vocab_size") && h["vocab_size"].is_number_unsigned() &&
                            h["vocab_size"].get<std::uint64_t>() >= 2 &&
                            h["vocab_size"].get<std::uint64_t>() <= 16777216,
          "an integer in [2, 16777216]");
  require("count", h.contains("count") && h["count"].is_number_unsigned(), "a non-negative integer");
  if (h["dtype"] == "uint16" && h["vocab_size"].get<std::uint64_t>() > 65536)
    fail("bad header: a vocabulary of " + h["vocab_size"].dump() + " needs dtype \"uint32\"");
  if (h.contains("tokenizer") && !h["tokenizer"].is_string())
    fail("bad header: \"tokenizer\" must be a string");
  return h;
}

}  // namespace

TokenFile read_token_file(const std::filesystem::path& path, const std::string& source,
                          const std::string& pointer) {
  const std::string name = "token file \"" + path.string() + "\"";
  const auto fail = [&](const std::string& message) -> void {
    throw JobError(source, pointer, name + ": " + message);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(std::string("cannot read: ") + std::strerror(errno));
  const std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (bytes.size() < kMagicBytes + kLengthBytes || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0)
    fail("not a token file: it must start with \"ELLMTOK1\" (docs/DATA.md)");
  const std::uint64_t header_bytes = little_endian(bytes.data() + kMagicBytes, 4);
  const std::size_t data_begin = kMagicBytes + kLengthBytes + header_bytes;
  if (data_begin > bytes.size())
    fail("bad header: its length field says " + std::to_string(header_bytes) +
         " bytes but the file ends before");
  const nlohmann::json h = parse_header(
      std::string(bytes.begin() + kMagicBytes + kLengthBytes, bytes.begin() + data_begin), fail);
  const int width = h["dtype"] == "uint16" ? 2 : 4;
  const std::uint64_t count = h["count"].get<std::uint64_t>();
  const std::uint64_t data_bytes = bytes.size() - data_begin;
  if (count > data_bytes / width || data_bytes != count * width)
    fail("holds " + std::to_string(data_bytes) + " bytes of token ids, expected count × " +
         std::to_string(width) + " = " + std::to_string(count * width) +
         " (header count " + std::to_string(count) + ", dtype " + h["dtype"].get<std::string>() + ")");
  TokenFile file;
  file.vocab_size = h["vocab_size"].get<int>();
  file.tokenizer = h.value("tokenizer", "");
  file.ids.resize(count);
  const unsigned char* p = bytes.data() + data_begin;
  for (std::uint64_t i = 0; i < count; i++) {
    const std::uint64_t id = little_endian(p + i * width, width);
    if (id >= std::uint64_t(file.vocab_size))
      fail("token " + std::to_string(i) + " is " + std::to_string(id) +
           ", not below the header's vocab_size " + std::to_string(file.vocab_size));
    file.ids[i] = TokenId(id);
  }
  return file;
}

void write_token_file(const std::filesystem::path& path, const std::vector<TokenId>& ids,
                      int vocab_size, const std::string& tokenizer) {
  const int width = vocab_size <= 65536 ? 2 : 4;
  const std::string header = nlohmann::json{{"version", 1},
                                            {"dtype", width == 2 ? "uint16" : "uint32"},
                                            {"vocab_size", vocab_size},
                                            {"count", ids.size()},
                                            {"tokenizer", tokenizer}}
                                 .dump();
  std::string out(kMagic, kMagicBytes);
  for (int i = 0; i < 4; i++) out += char((header.size() >> (8 * i)) & 0xFF);
  out += header;
  out.reserve(out.size() + ids.size() * width);
  for (const TokenId id : ids) {
    for (int i = 0; i < width; i++) out += char((std::uint32_t(id) >> (8 * i)) & 0xFF);
  }
  std::ofstream f(path, std::ios::binary);
  f << out;
  if (!f.flush()) throw std::runtime_error("cannot write \"" + path.string() + "\": " + std::strerror(errno));
}

}  // namespace ellm
