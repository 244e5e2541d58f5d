// A temporary directory standing in for "/" (sysfs and procfs files) in tests of the readers that
// take a root directory.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace ellm::testing {

class FakeTree : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ellm_fake_root_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Writes root/relative (creating its directories) and returns its path.
  std::filesystem::path put(const std::string& relative, const std::string& content) {
    const std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << content;
    return path;
  }

  std::filesystem::path root_;
};

}  // namespace ellm::testing
