// The output directory's file system is checked for space before any run: the reports and the
// checkpoints a job will write are estimated and compared with what is free (statvfs).
#pragma once
#include <filesystem>
#include <string>

#include "efficientllm/config.hpp"

namespace ellm::cli {

// "" when there is room, else the message: which directory, how much is free, what the job needs.
std::string disk_space_problem(const Job& job, const std::filesystem::path& out_dir);

}  // namespace ellm::cli
