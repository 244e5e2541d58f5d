// Reads of small kernel files (sysfs, procfs). Every reader of machine state takes a root
// directory ("/" normally, $ELLM_SYSFS_ROOT when set) so tests can point it at a fake tree.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace ellm::sysfs {

// The root the CLI reads machine state under: $ELLM_SYSFS_ROOT, else "/".
std::filesystem::path root_dir();

// The whole file, or nullopt with `error` set to "PATH: strerror" (a directory, a dangling link,
// a permission error all land here).
std::optional<std::string> read_text(const std::filesystem::path& path, std::string& error);
// A decimal unsigned integer (surrounding white space allowed), or nullopt with `error` set.
std::optional<std::uint64_t> read_u64(const std::filesystem::path& path, std::string& error);
// The file's first line without the newline; "" when it cannot be read.
std::string read_line(const std::filesystem::path& path);

}  // namespace ellm::sysfs
