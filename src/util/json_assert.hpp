// Force-included before every source (CMakeLists.txt): nlohmann::json's internal checks throw
// instead of compiling to nothing under NDEBUG. Without this, reading a missing key of a const
// object (report["runs"] in a renderer fed a hostile report.json) is undefined behaviour, not an
// error. (A check failing inside one of the library's noexcept functions still terminates, which
// is a clean abort, not silent corruption.)
#pragma once
#include <stdexcept>
#include <string>

[[noreturn]] inline void ellm_json_assert_failed(const char* condition) {
  throw std::logic_error(std::string("nlohmann::json: ") + condition);
}
#define JSON_ASSERT(x) ((x) ? static_cast<void>(0) : ellm_json_assert_failed(#x))
