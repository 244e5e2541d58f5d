#include "metrics/sysfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ellm::sysfs {

std::filesystem::path root_dir() {
  const char* root = std::getenv("ELLM_SYSFS_ROOT");
  return root && *root ? root : "/";
}

// POSIX I/O rather than streams: the errno of a failed open or read is the reason a report shows.
std::optional<std::string> read_text(const std::filesystem::path& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, std::size_t(n));
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    error = path.string() + ": " + std::strerror(read_errno);
    return std::nullopt;
  }
  return text;
}

std::optional<std::uint64_t> read_u64(const std::filesystem::path& path, std::string& error) {
  const std::optional<std::string> text = read_text(path, error);
  if (!text) return std::nullopt;
  const char* begin = text->c_str();
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(begin, &end, 10);
  while (end && (*end == '\n' || *end == ' ')) end++;
  if (end == begin || errno != 0 || *end != '\0' || text->find('-') != std::string::npos) {
    error = path.string() + ": not an unsigned integer: \"" + text->substr(0, 40) + "\"";
    return std::nullopt;
  }
  return value;
}

std::string read_line(const std::filesystem::path& path) {
  std::string error;
  const std::optional<std::string> text = read_text(path, error);
  return text ? text->substr(0, text->find('\n')) : "";
}

}  // namespace ellm::sysfs
