// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__":
// {string: string}}, then the raw little-endian data, offsets relative to its start. Headers are
// validated in full before any tensor is handed out; data are read with pread() straight into
// the caller's memory (no mapping: copying out of a private map ran at a fraction of the disk's
// speed). Writes are atomic (temporary file, fsync, rename) and carry an XXH3-128 checksum of the
// data section in the metadata, which the reader verifies when present (files written elsewhere
// have none): on open, or while Reader::load reads the file, so that it is read once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ellm::st {

enum class DType { F32, F16, BF16 };  // others are refused with the dtype named
const char* dtype_name(DType dtype);  // "F32", "F16", "BF16"
std::size_t dtype_size(DType dtype);

// One bad or unreadable file. what() is "FILE: tensor 'NAME': MESSAGE", or "FILE: MESSAGE" when
// the problem is not one tensor's.
class FileError : public std::runtime_error {
 public:
  FileError(std::string file, std::string tensor, std::string message);
  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_, tensor_, message_;
};

class File;  // an open file read with pread()

struct TensorView {  // where a tensor's bytes are in its file (nothing is read yet)
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;         // of its little-endian raw data in the file
  std::size_t bytes = 0;
  std::filesystem::path file;       // the file holding it (a shard of a sharded checkpoint)
  std::shared_ptr<const File> source;
  std::size_t numel() const;
};

// When Reader::open verifies the checksums: right away (a whole pass over the data), or during
// Reader::load, which then must be given every tensor the caller uses before it uses any.
enum class Checksum { verify_on_open, verify_on_load };

// Part of an F32 tensor for Reader::load: elements [first, first + n) (row-major) → dst.
struct LoadSpan {
  const TensorView* tensor = nullptr;
  std::size_t first = 0, n = 0;
  float* dst = nullptr;
};

// One .safetensors file, or a sharded checkpoint (a directory with model.safetensors.index.json,
// or that index file itself; a directory with a single model.safetensors opens that file).
class Reader {
 public:
  // Validates every header fully (see docs/CHECKPOINTS.md for the checks) and, with
  // verify_on_open, the checksums.
  static Reader open(const std::filesystem::path& file_or_dir, Checksum when = Checksum::verify_on_open);
  // Reads every file's data section once, front to back in large requests, straight into the
  // spans' destinations (F32 tensors only), hashing it on the way; with verify_on_load, throws
  // FileError on a checksum mismatch (after which the destinations hold unverified data).
  void load(std::vector<LoadSpan> spans) const;
  const TensorView& at(const std::string& name) const;  // throws FileError naming file + tensor
  const TensorView* find(const std::string& name) const;
  std::vector<std::string> names() const;  // in data order (file by file)
  // "__metadata__" (of every shard, and the index's "metadata" whose values are stringified).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void add_file(const std::filesystem::path& file);
  std::filesystem::path path_;
  struct DataSection {
    std::shared_ptr<const File> file;
    std::uint64_t begin = 0, bytes = 0;
    std::string checksum;  // as recorded ("" when none); verified on open or load
  };
  std::vector<DataSection> files_;
  Checksum when_ = Checksum::verify_on_open;
  std::map<std::string, TensorView> tensors_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// dst (numel) ← the tensor converted to float/double (F16 and BF16 widen exactly), read with
// pread() (F32 into dst directly, F16/BF16 through a small buffer in chunks).
template <class T>
void read_as(const TensorView& t, T* dst);
// dst (n) ← elements [first, first + n) of the tensor (row-major), converted the same way.
template <class T>
void read_range_as(const TensorView& t, std::size_t first, std::size_t n, T* dst);

// Narrowing for writers: round to nearest, ties to even (F16 overflows to ±inf, NaN stays NaN).
std::uint16_t to_f16(float x);
std::uint16_t to_bf16(float x);
float from_f16(std::uint16_t h);
float from_bf16(std::uint16_t b);

struct TensorOut {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;  // numel · dtype_size bytes, little-endian, in dtype
};

// The metadata key holding "xxh3_128:<32 hex digits>" of the data section.
inline constexpr const char* kChecksumKey = "ellm.checksum";

// Atomic write: a temporary file in the same directory, fsync, rename, fsync of the directory;
// the checksum goes into the metadata. Throws FileError (nothing left behind) on any failure.
void write(const std::filesystem::path& file, const std::vector<TensorOut>& tensors,
           std::map<std::string, std::string> metadata);

}  // namespace ellm::st
