// Resident memory of this process, read from /proc (Linux).
#pragma once
#include <cstdint>

namespace ellm {

std::uint64_t resident_bytes();       // current RSS, /proc/self/statm
std::uint64_t peak_resident_bytes();  // high-water mark, VmHWM in /proc/self/status

}  // namespace ellm
