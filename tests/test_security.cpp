// No output path the suite derives from a job can leave the output directory: job and run names
// are single path components, grid labels made from path-valued fields carry no separator, and
// the checkpoint path refuses any name that would slip past the validator.
#include <gtest/gtest.h>

#include <string>

#include "efficientllm/config.hpp"
#include "train/checkpoint.hpp"

namespace ellm {
namespace {

bool inside(const std::filesystem::path& dir, const std::filesystem::path& p) {
  const std::string d = dir.lexically_normal().string() + "/", q = p.lexically_normal().string();
  return q.compare(0, d.size(), d) == 0;
}

TEST(OutputPaths, GridLabelsFromPathsStayOneComponent) {
  const std::string job = R"({"name": "j", "grid": {"checkpoint.dir": ["../../../tmp/escape", "/etc/x"]}})";
  const Job j = parse_job(job, "/nonexistent/job.json");
  ASSERT_EQ(j.runs.size(), 2u);
  const std::filesystem::path out = "/results/j-1";
  for (const RunConfig& run : j.runs) {
    EXPECT_EQ(run.name.find('/'), std::string::npos) << run.name;
    EXPECT_TRUE(inside(out, checkpoint_file(out / "checkpoints", run, 7))) << checkpoint_file(out / "checkpoints", run, 7);
  }
}

TEST(OutputPaths, HostileJobAndRunNamesAreRefused) {
  for (const std::string name : {"../x", "..", ".", "a/b", "", "a b"}) {
    const nlohmann::json as_job = {{"name", name}};
    EXPECT_THROW(parse_job(as_job.dump(), "/nonexistent/job.json"), JobError) << name;
    const nlohmann::json as_run = {{"name", "j"}, {"runs", {{{"name", name}}}}};
    EXPECT_THROW(parse_job(as_run.dump(), "/nonexistent/job.json"), JobError) << name;
  }
}

TEST(OutputPaths, CheckpointPathRefusesNamesThatWouldEscape) {
  RunConfig run;
  for (const std::string name : {"..", ".", "a/../../b", ""}) {
    run.name = name;
    EXPECT_THROW(checkpoint_file("/out/checkpoints", run, 1), std::invalid_argument) << name;
  }
  run.name = "ok,lr=0.1";
  EXPECT_EQ(checkpoint_file("/out/checkpoints", run, 1), "/out/checkpoints/ok,lr=0.1/step-000001.safetensors");
}

}  // namespace
}  // namespace ellm
