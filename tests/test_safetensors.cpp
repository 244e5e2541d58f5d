// The safetensors reader and writer: round trips in every dtype, the narrowing conversions against
// the compiler's own _Float16, sharded checkpoints, and one exact message per class of bad file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace ellm::st;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ellm_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file from a header given as text and a data section of `data_bytes` bytes 0, 1, 2, ...
  std::string raw(const std::string& name, const std::string& header, std::size_t data_bytes,
                  std::uint64_t header_length = 0) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = header_length ? header_length : header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    for (std::size_t i = 0; i < data_bytes; i++) out.put(char(i));
    return path;
  }
  // The message Reader::open throws for `path` ("" when it opens).
  static std::string open_error(const std::string& path) {
    try {
      Reader::open(path);
    } catch (const FileError& e) {
      return e.what();
    }
    return "";
  }
  std::string valid_file(const std::string& name) {
    std::vector<float> a(6);
    for (int i = 0; i < 6; i++) a[i] = 0.5f * float(i) - 1.25f;
    const std::string path = (dir_ / name).string();
    write(path, {{"a", DType::F32, {2, 3}, a.data()}}, {{"note", "test"}});
    return path;
  }

  fs::path dir_;
};

std::vector<float> random_floats(std::size_t n, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndTheMetadata) {
  const auto f32 = random_floats(24, 1, 1.0f);
  const auto wide = random_floats(10, 2, 3.0f);
  std::vector<std::uint16_t> f16(wide.size()), bf16(wide.size());
  for (std::size_t i = 0; i < wide.size(); i++) {
    f16[i] = to_f16(wide[i]);
    bf16[i] = to_bf16(wide[i]);
  }
  const std::string path = (dir_ / "m.safetensors").string();
  write(path,
        {{"w", DType::F32, {2, 3, 4}, f32.data()},
         {"h", DType::F16, {10}, f16.data()},
         {"b", DType::BF16, {2, 5}, bf16.data()},
         {"empty", DType::F32, {0, 3}, nullptr}},
        {{"step", "7"}});
  const Reader r = Reader::open(path);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"w", "h", "b", "empty"}));
  EXPECT_EQ(r.metadata().at("step"), "7");
  EXPECT_TRUE(r.metadata().count(kChecksumKey) == 0);  // file-level, verified on open
  const TensorView& w = r.at("w");
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{2, 3, 4}));
  std::vector<float> back(24);
  read_as(w, back.data());
  EXPECT_EQ(back, f32);
  std::vector<double> h(10), b(10);
  read_as(r.at("h"), h.data());
  read_as(r.at("b"), b.data());
  for (std::size_t i = 0; i < wide.size(); i++) {
    EXPECT_EQ(h[i], double(from_f16(f16[i])));
    EXPECT_NEAR(h[i], wide[i], std::abs(wide[i]) * 1e-3 + 1e-7);  // 11 significant bits
    EXPECT_EQ(b[i], double(from_bf16(bf16[i])));
    EXPECT_NEAR(b[i], wide[i], std::abs(wide[i]) * 4e-3);  // 8 significant bits
  }
  std::vector<float> part(5);  // a range, as a rank reads its shard
  read_range_as(w, 7, 5, part.data());
  EXPECT_EQ(part, std::vector<float>(f32.begin() + 7, f32.begin() + 12));
  std::vector<double> half_part(3);
  read_range_as(r.at("h"), 4, 3, half_part.data());
  for (int i = 0; i < 3; i++) EXPECT_EQ(half_part[i], double(from_f16(f16[4 + i])));
  EXPECT_EQ(r.at("empty").numel(), 0u);
  EXPECT_EQ(r.find("nothing"), nullptr);
}

TEST(HalfConversion, MatchesTheCompilersFloat16OnRandomAndEdgeValues) {
  std::vector<float> values = random_floats(20000, 3, 1.0f);
  for (float scale : {1e-8f, 1e-6f, 1e-4f, 100.0f, 3e4f}) {
    for (float x : random_floats(2000, 4, scale)) values.push_back(x);
  }
  // ties, the largest half, the overflow boundary, the smallest subnormal and its halves
  for (float x : {65504.0f, 65519.99f, 65520.0f, 1e9f, 5.9604645e-8f, 2.9802322e-8f, 8.940697e-8f,
                  6.1035156e-5f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, -0.0f, 0.0f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    values.push_back(x);
  for (float x : values) {
    const _Float16 reference = static_cast<_Float16>(x);
    std::uint16_t bits;
    std::memcpy(&bits, &reference, 2);
    ASSERT_EQ(to_f16(x), bits) << x;
    ASSERT_EQ(from_f16(bits), static_cast<float>(reference)) << x;
  }
  EXPECT_TRUE(std::isnan(from_f16(to_f16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(HalfConversion, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);  // above the tie
  EXPECT_EQ(to_bf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // overflows to inf
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  for (float x : random_floats(1000, 5, 10.0f)) {
    const float back = from_bf16(to_bf16(x));
    EXPECT_LE(std::abs(back - x), std::abs(x) * 0.00390625f) << x;  // half an ulp of 8 bits
  }
}

TEST_F(SafetensorsTest, ReadsAShardedCheckpointThroughItsIndex) {
  const auto a = random_floats(4, 6, 1.0f), b = random_floats(6, 7, 1.0f);
  write(dir_ / "model-00001-of-00002.safetensors", {{"a", DType::F32, {4}, a.data()}}, {});
  write(dir_ / "model-00002-of-00002.safetensors", {{"b", DType::F32, {2, 3}, b.data()}}, {});
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"metadata": {"total_size": 40}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors"}})";
  const Reader r = Reader::open(dir_);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.metadata().at("total_size"), "40");
  std::vector<float> back(6);
  read_as(r.at("b"), back.data());
  EXPECT_EQ(back, b);
  EXPECT_EQ(r.at("a").file.filename(), "model-00001-of-00002.safetensors");

  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}})";
  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  EXPECT_EQ(open_error(dir_.string()), (dir_ / "model-00001-of-00002.safetensors").string() +
                                           ": tensor 'b': listed in model.safetensors.index.json but not in this file");
}

TEST_F(SafetensorsTest, ADirectoryWithoutACheckpointIsNamed) {
  EXPECT_EQ(open_error(dir_.string()),
            dir_.string() + ": no model.safetensors or model.safetensors.index.json in this directory");
  EXPECT_EQ(open_error((dir_ / "none.safetensors").string()),
            (dir_ / "none.safetensors").string() + ": cannot open: No such file or directory");
}

TEST_F(SafetensorsTest, TruncatedFiles) {
  const std::string path = valid_file("t.safetensors");
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 4);  // the last float lost
  EXPECT_EQ(open_error(path),
            path + ": tensor 'a': data_offsets [0, 24] run past the end of the data section (20 bytes): "
                   "the file is truncated or its header is wrong");
  fs::resize_file(path, 40);  // inside the header
  EXPECT_EQ(open_error(path).substr(0, path.size() + 15), path + ": header length");
  EXPECT_NE(open_error(path).find("runs past the end of the file (40 bytes): the file is truncated"),
            std::string::npos);
  fs::resize_file(path, 5);
  EXPECT_EQ(open_error(path),
            path + ": truncated: 5 bytes, fewer than the 8-byte header length a safetensors file starts with");
}

TEST_F(SafetensorsTest, HeaderLengthPastTheEnd) {
  const std::string path = raw("h.safetensors", "{}", 0, 1000);
  EXPECT_EQ(open_error(path),
            path + ": header length 1000 runs past the end of the file (10 bytes): the file is truncated");
  const std::string huge = raw("g.safetensors", "{}", 0, 1ull << 40);
  EXPECT_EQ(open_error(huge), huge + ": header length 1099511627776 is over the limit of 100000000 bytes: "
                                     "not a safetensors file");
}

TEST_F(SafetensorsTest, HeaderThatIsNotJson) {
  const std::string path = raw("j.safetensors", R"({"a": {"dtype": "F32",)", 0);
  EXPECT_EQ(open_error(path), path + ": header is not valid JSON (at byte 23 of the header)");
  const std::string list = raw("l.safetensors", "[1, 2]", 0);
  EXPECT_EQ(open_error(list), list + ": header is not a JSON object");
}

TEST_F(SafetensorsTest, OverlappingOffsets) {
  const std::string path = raw("o.safetensors",
                               R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                               12);
  EXPECT_EQ(open_error(path), path + ": tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]");
}

TEST_F(SafetensorsTest, OffsetsPastTheEnd) {
  const std::string path = raw("p.safetensors",
                               R"({"a": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}})", 12);
  EXPECT_EQ(open_error(path), path + ": tensor 'a': data_offsets [8, 16] run past the end of the data "
                                     "section (12 bytes): the file is truncated or its header is wrong");
}

TEST_F(SafetensorsTest, GapsAndTrailingBytes) {
  const std::string gap = raw("g.safetensors",
                              R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8);
  EXPECT_EQ(open_error(gap), gap + ": tensor 'a': data_offsets start at 4, leaving a gap after byte 0 "
                                   "(safetensors data must be fully indexed)");
  const std::string tail = raw("t.safetensors",
                               R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8);
  EXPECT_EQ(open_error(tail), tail + ": the tensors cover 4 of the 8 bytes of the data section");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  const std::string path = raw("d.safetensors",
                               R"({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8);
  EXPECT_EQ(open_error(path), path + ": tensor 'a': dtype 'I64' is not supported (F32, F16 or BF16)");
}

TEST_F(SafetensorsTest, ShapeThatDoesNotMatchTheSpan) {
  const std::string path = raw("s.safetensors",
                               R"({"a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})", 8);
  EXPECT_EQ(open_error(path), path + ": tensor 'a': shape [2, 3] of BF16 needs 12 bytes, but data_offsets "
                                     "[0, 8] span 8");
  const std::string neg = raw("n.safetensors",
                              R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4);
  EXPECT_EQ(open_error(neg), neg + ": tensor 'a': \"shape\" must be an array of non-negative integers");
  const std::string fields = raw("f.safetensors", R"({"a": {"dtype": "F32"}})", 0);
  EXPECT_EQ(open_error(fields),
            fields + ": tensor 'a': expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
}

TEST_F(SafetensorsTest, MissingTensorIsNamed) {
  const std::string path = valid_file("m.safetensors");
  const Reader r = Reader::open(path);
  try {
    r.at("wte");
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor 'wte': missing from the checkpoint");
    EXPECT_EQ(e.tensor(), "wte");
  }
}

TEST_F(SafetensorsTest, AFlippedByteFailsTheChecksum) {
  const std::string path = valid_file("c.safetensors");
  ASSERT_EQ(open_error(path), "");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put(char(0x5a));
  }
  const std::string message = open_error(path);
  EXPECT_TRUE(message.starts_with(path + ": checksum mismatch: the data section hashes to xxh3_128:"))
      << message;
  EXPECT_NE(message.find(" but the header records xxh3_128:"), std::string::npos);
  EXPECT_TRUE(message.ends_with(": the file is corrupted"));
}

// Reader::load: spans anywhere in any tensor (as a tensor-parallel shard cuts them), in any order,
// land where they belong; the bytes between them are still hashed, so a flipped byte outside
// every span fails the load; a reader that verified on open does not hash again.
TEST_F(SafetensorsTest, LoadReadsSpansOnceAndVerifiesOnTheWay) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> a(3000), b(5000);
  for (float& x : a) x = u(gen);
  for (float& x : b) x = u(gen);
  const std::string path = (dir_ / "l.safetensors").string();
  write(path, {{"a", DType::F32, {30, 100}, a.data()}, {"b", DType::F32, {5000}, b.data()}}, {});
  auto load = [&](Checksum when) {
    const Reader r = Reader::open(path, when);
    std::vector<float> out(3000 + 700, 0.0f);
    r.load({{&r.at("b"), 4000, 600, out.data() + 3000},  // not in file order
            {&r.at("a"), 0, 3000, out.data()},
            {&r.at("b"), 100, 100, out.data() + 3600}});
    return out;
  };
  const std::vector<float> out = load(Checksum::verify_on_load);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), out.begin()));
  EXPECT_TRUE(std::equal(b.begin() + 4000, b.begin() + 4600, out.begin() + 3000));
  EXPECT_TRUE(std::equal(b.begin() + 100, b.begin() + 200, out.begin() + 3600));
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-4 * 2000, std::ios::end);  // b[3000]: in no span
    f.put(char(0x5a));
  }
  try {
    load(Checksum::verify_on_load);
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(path + ": checksum mismatch: the data section hashes to"))
        << e.what();
  }
  EXPECT_EQ(open_error(path).substr(0, path.size() + 19), path + ": checksum mismatch");
}

TEST_F(SafetensorsTest, WritesAreAtomic) {
  const std::string path = valid_file("w.safetensors");
  std::vector<float> big(1000, 2.0f);
  write(path, {{"a", DType::F32, {1000}, big.data()}}, {});  // replaces the file whole
  EXPECT_EQ(Reader::open(path).at("a").numel(), 1000u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);  // no temp file

  const fs::path missing = dir_ / "no_such_dir" / "x.safetensors";
  try {
    write(missing, {{"a", DType::F32, {1000}, big.data()}}, {});
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_EQ(std::string(e.what()),
              missing.string() + ": cannot create " + (dir_ / "no_such_dir").string() + "/.x.safetensors.tmp." +
                  std::to_string(::getpid()) + ": No such file or directory (the file was not written)");
  }
}
