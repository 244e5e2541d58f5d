// Checkpoint load speed against the disk's own sequential read speed, measured side by side in
// one run: a checkpoint-shaped safetensors file (many F32 tensors, checksum in the metadata) is
// written once; then, alternately, (a) plain read() of the whole file into a 8 MiB buffer and
// (b) what a resume does: st::Reader::open (validate the header) and st::Reader::load (pread()
// of every tensor straight into a float arena, hashing XXH3-128 on the way, then the check).
// Before each cold pass the file's pages are dropped from the page cache with
// posix_fadvise(POSIX_FADV_DONTNEED) (this file only: other users of the machine keep theirs),
// and mincore() reports how much of it was still resident. Hot passes (file cached) show the CPU
// side alone: checksum plus copy against a bare read().
// As root, `sync; echo 3 > /proc/sys/vm/drop_caches` is done too before each cold pass.
//
// usage: bench_checkpoint [DIR] [MiB] [REPEATS]   (default: /tmp, 1024 MiB, 3)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "util/rng.hpp"

namespace fs = std::filesystem;
using namespace ellm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Drops the file's clean pages from the page cache; returns the share still resident.
double drop_from_cache(const fs::path& file) {
  ::sync();
  if (std::FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w")) {  // root only
    std::fputs("3", f);
    std::fclose(f);
  }
  const int fd = ::open(file.c_str(), O_RDONLY);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const std::size_t size = fs::file_size(file);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  ::mincore(map, size, resident.data());
  ::munmap(map, size);
  ::close(fd);
  const auto in_core = std::count_if(resident.begin(), resident.end(), [](unsigned char c) { return c & 1; });
  return double(in_core) / double(resident.size());
}

double read_whole(const fs::path& file) {
  const double t0 = now();
  const int fd = ::open(file.c_str(), O_RDONLY);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buffer(std::size_t(8) << 20);
  std::size_t total = 0;
  for (ssize_t n; (n = ::read(fd, buffer.data(), buffer.size())) > 0;) total += std::size_t(n);
  ::close(fd);
  const double seconds = now() - t0;
  if (total != fs::file_size(file)) std::fprintf(stderr, "short read\n");
  return seconds;
}

double open_seconds = 0;  // of the last load: Reader::open (the header)

// What a resume does: open (header only, checksum deferred), then one pass over the file with
// pread() straight into the arena, hashing on the way.
double load_checkpoint_like(const fs::path& file, std::vector<float>& arena) {
  const double t0 = now();
  const st::Reader reader = st::Reader::open(file, st::Checksum::verify_on_load);
  open_seconds = now() - t0;
  std::vector<st::LoadSpan> spans;
  std::size_t at = 0;
  for (const std::string& name : reader.names()) {
    const st::TensorView& t = reader.at(name);
    spans.push_back({&t, 0, t.numel(), arena.data() + at});
    at += t.numel();
  }
  reader.load(std::move(spans));
  return now() - t0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? argv[1] : "/tmp";
  const std::size_t mib = argc > 2 ? std::stoul(argv[2]) : 1024;
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 3;
  fs::path file = dir / "bench_checkpoint_";
  file += std::to_string(::getpid());  // (not "a" + std::string: GCC 12's false -Wrestrict)
  file += ".safetensors";

  // 4 MiB tensors, like the matrices of a mid-sized model, with non-trivial values.
  const std::size_t per_tensor = std::size_t(1) << 20, count = mib / 4;
  std::vector<float> arena(per_tensor * count);
  Rng rng(42);
  for (float& x : arena) x = float(rng.normal());
  std::vector<st::TensorOut> tensors;
  for (std::size_t i = 0; i < count; i++)
    tensors.push_back({std::to_string(i), st::DType::F32, {1024, 1024}, arena.data() + i * per_tensor});
  const double w0 = now();
  st::write(file, tensors, {{"note", "bench_checkpoint"}});
  const double write_s = now() - w0;
  const double bytes = double(fs::file_size(file));
  std::printf("file %s: %.0f MiB in %zu tensors, written (fsync'ed) in %.2f s = %.0f MB/s\n",
              file.c_str(), bytes / (1 << 20), count, write_s, bytes / write_s / 1e6);

  std::vector<double> raw_cold, load_cold, raw_hot, load_hot, resident;
  for (int r = 0; r < repeats; r++) {
    resident.push_back(drop_from_cache(file));
    raw_cold.push_back(read_whole(file));
    resident.push_back(drop_from_cache(file));
    load_cold.push_back(load_checkpoint_like(file, arena));
    raw_hot.push_back(read_whole(file));
    load_hot.push_back(load_checkpoint_like(file, arena));
    std::printf("  pass %d: cold read %.2f s, cold load %.2f s; hot read %.2f s, hot load %.2f s (open %.3f s)\n",
                r + 1, raw_cold.back(), load_cold.back(), raw_hot.back(), load_hot.back(), open_seconds);
  }
  fs::remove(file);
  const double rc = bytes / median(raw_cold) / 1e6, lc = bytes / median(load_cold) / 1e6;
  const double rh = bytes / median(raw_hot) / 1e6, lh = bytes / median(load_hot) / 1e6;
  std::printf("still cached after DONTNEED: at most %.1f %% of the pages\n",
              100.0 * *std::max_element(resident.begin(), resident.end()));
  std::printf("cold (from disk), median of %d:  read() %6.0f MB/s   checkpoint load %6.0f MB/s   ratio %.2f\n",
              repeats, rc, lc, lc / rc);
  std::printf("hot (page cache), median of %d:  read() %6.0f MB/s   checkpoint load %6.0f MB/s   ratio %.2f\n",
              repeats, rh, lh, lh / rh);
  return 0;
}
