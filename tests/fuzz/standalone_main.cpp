// The fuzz targets' driver when the compiler has no libFuzzer (g++, the default build): runs every
// seed file, then random mutations of them (byte flips, inserts, deletions, duplications, splices
// and hostile tokens) until -max_total_time seconds or -runs inputs (0 / absent: no limit of
// that kind, as in libFuzzer). Understands the libFuzzer flags
// the test suite passes, so tests/fuzz/run.sh drives both drivers the same way. It finds crashes
// (and, in a sanitizer build, memory errors) but has no coverage feedback: the ≥ 10⁶-execution
// campaigns use libFuzzer (docs/RELIABILITY.md).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

const char* const kTokens[] = {"[[[[[[[[[[[[[[[[", "{\"a\":{\"a\":{\"a\":", "1e999999", "-9223372036854775809",
                               "18446744073709551616", "\"\\ud800\"", "\xff\xfe\xc0\x80", "null", "{}", "[]",
                               "\"\":", "0.0000000000000000000001", "\n\n", "\x00\x00\x00\x00"};

Bytes mutate(const Bytes& in, const std::vector<Bytes>& seeds, std::mt19937_64& rng) {
  Bytes b = in;
  const int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits; e++) {
    const std::size_t at = b.empty() ? 0 : rng() % (b.size() + 1);
    switch (rng() % 6) {
      case 0: if (!b.empty()) b[at % b.size()] ^= std::uint8_t(1u << (rng() % 8)); break;
      case 1: b.insert(b.begin() + at, std::uint8_t(rng())); break;
      case 2: if (!b.empty()) b.erase(b.begin() + at % b.size(), b.begin() + std::min(b.size(), at % b.size() + 1 + rng() % 16)); break;
      case 3: if (!b.empty() && b.size() < (1u << 20)) {
          const std::size_t from = rng() % b.size(), n = std::min<std::size_t>(b.size() - from, 1 + rng() % 64);
          const Bytes chunk(b.begin() + from, b.begin() + from + n);
          b.insert(b.begin() + at, chunk.begin(), chunk.end());
        } break;
      case 4: {
        const std::string t = kTokens[rng() % std::size(kTokens)];
        b.insert(b.begin() + at, t.begin(), t.end());
      } break;
      default: {
        const Bytes& other = seeds[rng() % seeds.size()];
        if (!other.empty()) b.insert(b.begin() + at, other.begin() + rng() % other.size(), other.end());
      }
    }
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  double max_seconds = 0;
  long long max_runs = -1;
  std::vector<Bytes> seeds;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) max_seconds = std::stod(a.substr(16));
    else if (a.rfind("-runs=", 0) == 0) max_runs = std::stoll(a.substr(6));
    else if (a[0] == '-') continue;  // other libFuzzer flags mean nothing here
    else if (std::filesystem::is_directory(a)) {
      for (const auto& f : std::filesystem::directory_iterator(a)) {
        std::ifstream in(f.path(), std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    }
  }
  if (seeds.empty()) seeds.emplace_back();
  for (const Bytes& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  std::mt19937_64 rng(20261202);
  const auto start = std::chrono::steady_clock::now();
  long long runs = 0;
  for (; max_runs < 0 || runs < max_runs; runs++) {
    if (max_seconds > 0 && (runs & 63) == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= max_seconds)
      break;
    if (max_seconds <= 0 && max_runs < 0) break;  // neither limit: the seeds alone
    const Bytes b = mutate(seeds[rng() % seeds.size()], seeds, rng);
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("standalone fuzz driver: %zu seeds, %lld mutated inputs, no crash\n", seeds.size(), runs);
  return 0;
}
