// Shared by the fuzz targets: the readers under test take file paths, so each input is written to
// one scratch file per process (in $TMPDIR, /dev/shm when the run script sets it).
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace ellm::fuzz {

inline std::string scratch_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/ellm_fuzz_" + std::to_string(getpid()) + "_" + name;
}

// Writes the input to the process's scratch file `name` and returns its path.
inline std::string write_scratch(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch_path(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

}  // namespace ellm::fuzz
