#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "data/json_error.hpp"

namespace ellm::st {

// The format is little-endian and the data are used in place.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The reference implementation's limit: a header this large is a corrupted length field.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string error_text(const std::string& file, const std::string& tensor, const std::string& message) {
  return file + ": " + (tensor.empty() ? "" : "tensor '" + tensor + "': ") + message;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// (Built by appending: GCC 12 warns falsely (-Wrestrict, bug 105329) on "[" + std::string.)
std::string range_text(std::size_t begin, std::size_t end) {
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  return s += "]";
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; i++) {
    s += digits[bytes[i] >> 4];
    s += digits[bytes[i] & 15];
  }
  return s;
}

std::string checksum_text(const XXH128_hash_t& hash) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, hash);
  return "xxh3_128:" + hex(canonical.digest, sizeof canonical.digest);
}

bool parse_dtype(const std::string& name, DType& dtype) {
  for (DType d : {DType::F32, DType::F16, DType::BF16}) {
    if (name == dtype_name(d)) {
      dtype = d;
      return true;
    }
  }
  return false;
}

// numel · element size, or false when it overflows (such a tensor cannot be in any file).
bool byte_size(const std::vector<std::int64_t>& shape, std::size_t element, std::size_t& bytes) {
  bytes = element;
  for (std::int64_t d : shape) {
    if (d != 0 && bytes > std::numeric_limits<std::size_t>::max() / std::size_t(d)) return false;
    bytes *= std::size_t(d);
  }
  return true;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

std::size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

FileError::FileError(std::string file, std::string tensor, std::string message)
    : std::runtime_error(error_text(file, tensor, message)),
      file_(std::move(file)),
      tensor_(std::move(tensor)),
      message_(std::move(message)) {}

std::size_t TensorView::numel() const {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= std::size_t(d);
  return n;
}

// ---- the file ----

class File {
 public:
  explicit File(const fs::path& file) : file_(file) {
    fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw FileError(file.string(), "", std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int err = errno;
      ::close(fd_);
      throw FileError(file.string(), "", S_ISREG(st.st_mode) ? std::string("cannot stat: ") + std::strerror(err)
                                                            : std::string("not a regular file"));
    }
    size_ = std::uint64_t(st.st_size);
    // Loading reads front to back: let the kernel read ahead further.
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~File() { ::close(fd_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::uint64_t size() const { return size_; }
  const fs::path& path() const { return file_; }

  // dst (n bytes) ← the file's bytes at `offset`; the whole range or a FileError.
  void read(std::uint64_t offset, void* dst, std::size_t n) const {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, p, std::min<std::size_t>(n, kMaxRequest), off_t(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw FileError(file_.string(), "", std::string("cannot read: ") + std::strerror(errno));
      if (got == 0)
        throw FileError(file_.string(), "", "ended at byte " + std::to_string(offset) +
                                                " while being read: the file was truncated after it was opened");
      p += got;
      offset += std::uint64_t(got);
      n -= std::size_t(got);
    }
  }

 private:
  static constexpr std::size_t kMaxRequest = std::size_t(1) << 30;  // Linux caps one read near 2 GiB
  fs::path file_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// ---- reading ----

namespace {

// One header entry → a view into the data section, every field checked.
TensorView parse_entry(const std::string& file, const std::string& name, const json& entry,
                       std::uint64_t data_begin, std::size_t data_bytes) {
  auto fail = [&](const std::string& message) { throw FileError(file, name, message); };
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets"))
    fail("expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
  TensorView t;
  t.name = name;
  t.file = file;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) fail("\"dtype\" must be a string (F32, F16 or BF16)");
  if (!parse_dtype(dtype.get<std::string>(), t.dtype))
    fail("dtype '" + dtype.get<std::string>() + "' is not supported (F32, F16 or BF16)");
  const json& shape = entry["shape"];
  if (!shape.is_array()) fail("\"shape\" must be an array of non-negative integers");
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) fail("\"shape\" must be an array of non-negative integers");
    t.shape.push_back(d.get<std::int64_t>());
  }
  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned() || offsets[0].get<std::uint64_t>() > offsets[1].get<std::uint64_t>())
    fail("\"data_offsets\" must be two non-negative integers [begin, end] with begin <= end");
  const std::uint64_t begin = offsets[0], end = offsets[1];
  if (end > data_bytes)
    fail("data_offsets " + range_text(begin, end) + " run past the end of the data section (" +
         std::to_string(data_bytes) + " bytes): the file is truncated or its header is wrong");
  std::size_t bytes = 0;
  if (!byte_size(t.shape, dtype_size(t.dtype), bytes) || bytes != end - begin)
    fail("shape " + shape_text(t.shape) + " of " + dtype_name(t.dtype) + " needs " +
         (bytes == 0 && !t.shape.empty() ? std::string("more bytes than fit in memory")
                                         : std::to_string(bytes) + " bytes") +
         ", but data_offsets " + range_text(begin, end) + " span " + std::to_string(end - begin));
  t.offset = data_begin + begin;
  t.bytes = bytes;
  return t;
}

// The tensors must tile the data section: no overlap, no gap, nothing after the last one.
// Leaves `views` in data order.
void check_tiling(const std::string& file, std::vector<const TensorView*>& views, std::uint64_t data_begin,
                  std::size_t data_bytes) {
  std::sort(views.begin(), views.end(), [](const TensorView* a, const TensorView* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->bytes < b->bytes;
  });
  std::size_t covered = 0;
  const TensorView* previous = nullptr;
  for (const TensorView* t : views) {
    const std::size_t begin = std::size_t(t->offset - data_begin);
    if (begin < covered)
      throw FileError(file, t->name,
                      "data_offsets " + range_text(begin, begin + t->bytes) + " overlap tensor '" +
                          previous->name + "' at " +
                          range_text(std::size_t(previous->offset - data_begin), covered));
    if (begin > covered)
      throw FileError(file, t->name,
                      "data_offsets start at " + std::to_string(begin) + ", leaving a gap after byte " +
                          std::to_string(covered) + " (safetensors data must be fully indexed)");
    covered = begin + t->bytes;
    previous = t;
  }
  if (covered != data_bytes)
    throw FileError(file, "",
                    "the tensors cover " + std::to_string(covered) + " of the " +
                        std::to_string(data_bytes) + " bytes of the data section");
}

void check_checksum_text(const std::string& file, const std::string& recorded) {
  if (!recorded.starts_with("xxh3_128:"))
    throw FileError(file, "", std::string("__metadata__ \"") + kChecksumKey + "\": '" + recorded +
                                  "' is not a checksum this reader knows (xxh3_128:<hex>)");
}

// XXH3-128 over bytes fed in order, compared with the recorded value at the end.
class Hasher {
 public:
  Hasher() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }
  ~Hasher() { XXH3_freeState(state_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* p, std::size_t n) { XXH3_128bits_update(state_, p, n); }
  void expect(const std::string& file, const std::string& recorded) const {
    const std::string actual = checksum_text(XXH3_128bits_digest(state_));
    if (actual != recorded)
      throw FileError(file, "",
                      "checksum mismatch: the data section hashes to " + actual + " but the header records " +
                          recorded + ": the file is corrupted");
  }

 private:
  XXH3_state_t* state_;
};

// Requests of this size keep the disk streaming and the buffer in the last-level cache.
constexpr std::size_t kChunk = std::size_t(8) << 20;

}  // namespace

void Reader::add_file(const fs::path& path) {
  auto in = std::make_shared<const File>(path);
  const std::string file = path.string();
  if (in->size() < 8)
    throw FileError(file, "",
                    "truncated: " + std::to_string(in->size()) +
                        " bytes, fewer than the 8-byte header length a safetensors file starts with");
  std::uint64_t header_bytes = 0;
  in->read(0, &header_bytes, 8);
  if (header_bytes > kMaxHeaderBytes)
    throw FileError(file, "", "header length " + std::to_string(header_bytes) + " is over the limit of " +
                                  std::to_string(kMaxHeaderBytes) + " bytes: not a safetensors file");
  if (header_bytes > in->size() - 8)
    throw FileError(file, "",
                    "header length " + std::to_string(header_bytes) + " runs past the end of the file (" +
                        std::to_string(in->size()) + " bytes): the file is truncated");
  std::string text(header_bytes, '\0');
  in->read(8, text.data(), text.size());
  json header;
  try {
    header = json::parse(text);
  } catch (const json::parse_error& e) {
    throw FileError(file, "", "header is not valid JSON (at byte " + std::to_string(e.byte) +
                                  " of the header)");
  } catch (const json::exception& e) {  // out_of_range: a number such as 1e999999
    throw FileError(file, "", "header is not valid JSON: " + json_error_text(e));
  }
  if (!header.is_object()) throw FileError(file, "", "header is not a JSON object");
  DataSection section{in, 8 + header_bytes, in->size() - 8 - header_bytes, ""};
  std::vector<const TensorView*> views;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        throw FileError(file, "", "__metadata__ must be an object of string values");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw FileError(file, "", "__metadata__ \"" + key + "\" must be a string");
        if (key == kChecksumKey) section.checksum = value.get<std::string>();
        else metadata_.emplace(key, value.get<std::string>());  // the first shard's value wins
      }
      continue;
    }
    TensorView t = parse_entry(file, name, entry, section.begin, section.bytes);
    t.source = in;
    if (const TensorView* other = find(name))
      throw FileError(file, name, "also in " + other->file.string() + " (a tensor may be in one file only)");
    views.push_back(&tensors_.emplace(name, std::move(t)).first->second);
  }
  check_tiling(file, views, section.begin, section.bytes);  // sorts views by offset
  for (const TensorView* t : views) order_.push_back(t->name);
  if (!section.checksum.empty()) {
    check_checksum_text(file, section.checksum);
    if (when_ == Checksum::verify_on_open) {
      Hasher hash;
      std::vector<std::byte> buffer(std::min<std::uint64_t>(kChunk, section.bytes));
      for (std::uint64_t at = 0; at < section.bytes; at += buffer.size()) {
        const std::size_t n = std::size_t(std::min<std::uint64_t>(buffer.size(), section.bytes - at));
        in->read(section.begin + at, buffer.data(), n);
        hash.update(buffer.data(), n);
      }
      hash.expect(file, section.checksum);
    }
  }
  files_.push_back(std::move(section));
}

void Reader::load(std::vector<LoadSpan> spans) const {
  for (const LoadSpan& s : spans) {
    if (s.tensor->dtype != DType::F32 || s.first + s.n > s.tensor->numel())
      throw std::logic_error("st::Reader::load: " + s.tensor->name + " is not F32 or the range runs past it");
  }
  std::sort(spans.begin(), spans.end(), [](const LoadSpan& a, const LoadSpan& b) {
    return a.tensor->offset + 4 * a.first < b.tensor->offset + 4 * b.first;
  });
  std::vector<std::byte> buffer;
  for (const DataSection& section : files_) {
    const File& in = *section.file;
    const bool hashing = when_ == Checksum::verify_on_load && !section.checksum.empty();
    Hasher hash;
    // Walk the data section front to back: a span's bytes go straight to its destination, the
    // bytes between spans (what this rank does not hold) through the buffer, all of them hashed.
    auto span = std::find_if(spans.begin(), spans.end(), [&](const LoadSpan& s) { return s.tensor->source.get() == &in; });
    auto next_span = [&](decltype(span) from) {
      return std::find_if(from, spans.end(), [&](const LoadSpan& s) { return s.tensor->source.get() == &in; });
    };
    std::uint64_t at = section.begin;
    const std::uint64_t end = section.begin + section.bytes;
    while (at < end && (hashing || span != spans.end())) {
      const std::uint64_t span_at = span == spans.end() ? end : span->tensor->offset + 4 * span->first;
      if (span_at < at) {  // overlaps bytes already passed (spans are disjoint in practice): reread
        in.read(span_at, span->dst, 4 * span->n);
        span = next_span(span + 1);
        continue;
      }
      if (span_at == at) {
        auto* dst = reinterpret_cast<std::byte*>(span->dst);
        for (std::size_t done = 0, bytes = 4 * span->n; done < bytes;) {
          const std::size_t n = std::min(kChunk, bytes - done);
          in.read(at, dst + done, n);
          if (hashing) hash.update(dst + done, n);  // while the chunk is still in cache
          done += n;
          at += n;
        }
        span = next_span(span + 1);
        continue;
      }
      const std::size_t n = std::size_t(std::min<std::uint64_t>(kChunk, span_at - at));
      if (!hashing) {  // nothing to check: skip to the next span
        at = span_at;
        continue;
      }
      buffer.resize(kChunk);
      in.read(at, buffer.data(), n);
      hash.update(buffer.data(), n);
      at += n;
    }
    if (hashing) hash.expect(in.path().string(), section.checksum);
  }
}

namespace {

// The index of a sharded checkpoint: {"metadata": {...}, "weight_map": {tensor: shard file}}.
struct Index {
  std::map<std::string, std::string> weight_map;
  std::vector<std::string> shards;  // in order of first appearance
  std::map<std::string, std::string> metadata;
};

Index read_index(const fs::path& path) {
  const File in(path);
  const std::string file = path.string();
  std::string text(in.size(), '\0');
  in.read(0, text.data(), text.size());
  json index;
  try {
    index = json::parse(text);
  } catch (const json::parse_error& e) {
    throw FileError(file, "", "not valid JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {  // out_of_range: a number such as 1e999999
    throw FileError(file, "", "not valid JSON: " + json_error_text(e));
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw FileError(file, "", "expected an object with \"weight_map\": {tensor name: shard file}");
  Index out;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || shard.get<std::string>().find('/') != std::string::npos ||
        shard.get<std::string>().empty() || shard.get<std::string>().starts_with("."))
      throw FileError(file, name, "the shard must be a file name in the same directory as the index");
    const std::string s = shard.get<std::string>();
    if (std::find(out.shards.begin(), out.shards.end(), s) == out.shards.end()) out.shards.push_back(s);
    out.weight_map.emplace(name, s);
  }
  if (index.contains("metadata") && index["metadata"].is_object()) {
    for (const auto& [key, value] : index["metadata"].items())
      out.metadata.emplace(key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

}  // namespace

Reader Reader::open(const fs::path& file_or_dir, Checksum when) {
  Reader r;
  r.path_ = file_or_dir;
  r.when_ = when;
  std::error_code ec;
  fs::path index_file;
  if (fs::is_directory(file_or_dir, ec)) {
    if (fs::exists(file_or_dir / kIndexName, ec)) index_file = file_or_dir / kIndexName;
    else if (fs::exists(file_or_dir / kSingleName, ec)) r.path_ = file_or_dir / kSingleName;
    else
      throw FileError(file_or_dir.string(), "",
                      std::string("no ") + kSingleName + " or " + kIndexName + " in this directory");
  } else if (file_or_dir.filename().string().ends_with(".index.json")) {
    index_file = file_or_dir;
  }
  if (index_file.empty()) {
    r.add_file(r.path_);
    return r;
  }
  r.path_ = index_file;
  const Index index = read_index(index_file);
  for (const std::string& shard : index.shards) r.add_file(index_file.parent_path() / shard);
  for (const auto& [name, shard] : index.weight_map) {
    const TensorView* t = r.find(name);
    if (!t || t->file.filename() != shard)
      throw FileError((index_file.parent_path() / shard).string(), name,
                      std::string("listed in ") + kIndexName + " but not in this file");
  }
  for (const auto& [name, t] : r.tensors_) {
    if (!index.weight_map.contains(name))
      throw FileError(t.file.string(), name, std::string("in this file but not in ") + kIndexName);
  }
  for (const auto& [key, value] : index.metadata) r.metadata_.emplace(key, value);
  return r;
}

const TensorView* Reader::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& Reader::at(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw FileError(path_.string(), name, "missing from the checkpoint");
  return *t;
}

std::vector<std::string> Reader::names() const { return order_; }

// ---- conversions ----

float from_bf16(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

float from_f16(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa · 2^-24, exact in float
    const float v = std::ldexp(float(mantissa), -24);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t to_bf16(float x) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  if ((f & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((f >> 16) | 0x40u);  // NaN stays (quiet) NaN
  return std::uint16_t((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);                 // ties to even
}

std::uint16_t to_f16(float x) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(x);
  const std::uint16_t sign = std::uint16_t((f >> 16) & 0x8000u);
  const std::uint32_t a = f & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // ≥ 65520 (halfway past the largest half): inf
  if (a < 0x38800000u) {                        // below 2^-14: a subnormal half, mantissa · 2^-24
    const float scaled = std::bit_cast<float>(a) * 16777216.0f;  // exact (a power of two)
    return sign | std::uint16_t(std::lrint(scaled));             // ties to even (default mode)
  }
  std::uint32_t h = ((a >> 23) - 112) << 10 | ((a & 0x7fffffu) >> 13);
  const std::uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h += 1;  // a carry rounds into the exponent
  return sign | std::uint16_t(h);
}

template <class T>
void read_range_as(const TensorView& t, std::size_t first, std::size_t n, T* dst) {
  const std::uint64_t at = t.offset + first * dtype_size(t.dtype);
  if (t.dtype == DType::F32 && std::is_same_v<T, float>) {
    t.source->read(at, dst, n * sizeof(float));
    return;
  }
  // Through a buffer, converting each chunk as it arrives.
  const std::size_t size = dtype_size(t.dtype), per_chunk = kChunk / 8 / size;
  std::vector<std::byte> buffer(std::min(n, per_chunk) * size);
  for (std::size_t done = 0; done < n;) {
    const std::size_t k = std::min(per_chunk, n - done);
    t.source->read(at + done * size, buffer.data(), k * size);
    for (std::size_t i = 0; i < k; i++) {
      if (t.dtype == DType::F32) {
        float v;
        std::memcpy(&v, buffer.data() + 4 * i, 4);
        dst[done + i] = T(v);
      } else {
        std::uint16_t b;
        std::memcpy(&b, buffer.data() + 2 * i, 2);
        dst[done + i] = T(t.dtype == DType::F16 ? from_f16(b) : from_bf16(b));
      }
    }
    done += k;
  }
}

template <class T>
void read_as(const TensorView& t, T* dst) {
  read_range_as(t, 0, t.numel(), dst);
}

template void read_range_as<float>(const TensorView&, std::size_t, std::size_t, float*);
template void read_range_as<double>(const TensorView&, std::size_t, std::size_t, double*);
template void read_as<float>(const TensorView&, float*);
template void read_as<double>(const TensorView&, double*);

// ---- writing ----

namespace {

// Closes the descriptor and removes the temporary file unless the write went through.
class TempFile {
 public:
  TempFile(fs::path target) : target_(std::move(target)) {
    std::string name = ".";  // hidden, and unique per process
    name += target_.filename().string();
    name += ".tmp.";
    name += std::to_string(::getpid());
    path_ = target_.parent_path() / name;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create " + path_.string());
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot write " + path_.string());
      p += w;
      n -= std::size_t(w);
    }
  }
  // fsync, rename over the target, fsync the directory so the rename itself is durable.
  void commit() {
    if (::fsync(fd_) != 0) fail("cannot fsync " + path_.string());
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close " + path_.string());
    if (::rename(path_.c_str(), target_.c_str()) != 0) fail("cannot rename " + path_.string());
    committed_ = true;
    const fs::path dir = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FileError(target_.string(), "",
                    what + ": " + std::strerror(errno) + " (the file was not written)");
  }
  fs::path target_, path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void write(const fs::path& file, const std::vector<TensorOut>& tensors,
           std::map<std::string, std::string> metadata) {
  json header = json::object();
  std::vector<std::size_t> sizes;
  std::size_t offset = 0;
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  std::set<std::string> seen;
  for (const TensorOut& t : tensors) {
    std::size_t bytes = 0;
    if (t.name == "__metadata__" || !seen.insert(t.name).second || t.name.empty() ||
        !byte_size(t.shape, dtype_size(t.dtype), bytes) || (bytes > 0 && !t.data) ||
        std::any_of(t.shape.begin(), t.shape.end(), [](std::int64_t d) { return d < 0; })) {
      XXH3_freeState(state);
      throw FileError(file.string(), t.name, "cannot be written: empty, reserved or repeated name, or bad shape");
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    XXH3_128bits_update(state, t.data, bytes);
    sizes.push_back(bytes);
    offset += bytes;
  }
  metadata[kChecksumKey] = checksum_text(XXH3_128bits_digest(state));
  XXH3_freeState(state);
  header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data start 8-byte aligned
  const std::uint64_t length = text.size();
  TempFile out(file);
  out.write(&length, 8);
  out.write(text.data(), text.size());
  for (std::size_t i = 0; i < tensors.size(); i++) out.write(tensors[i].data, sizes[i]);
  out.commit();
}

}  // namespace ellm::st
