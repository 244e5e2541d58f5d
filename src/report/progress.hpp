// Progress of a long job on the root's stderr: one redrawn line on a terminal, plain periodic
// lines otherwise (batch logs, CI), so both a person and a log reader can follow it.
#pragma once
#include <cstdio>
#include <string>

#include "efficientllm/config.hpp"
#include "train/trainer.hpp"

namespace ellm {

class Progress {
 public:
  Progress(std::FILE* out, bool interactive);
  void begin_run(int index, int count, const RunConfig& run);
  void step(int step, const StepSample& s);
  void eval(const EvalSample& e);
  void end_run(double wall_seconds);

 private:
  void print(const std::string& line, bool permanent);
  std::FILE* out_;
  bool interactive_;
  std::string prefix_;
  int steps_ = 0, log_every_ = 1;
  double tokens_per_step_ = 0, mean_step_s_ = 0;
};

}  // namespace ellm
