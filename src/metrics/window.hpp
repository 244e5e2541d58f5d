// The time windows of a run (docs/METRICS.md, "Windows"). The trainer says when each begins; the
// sampler takes a sample at every change, so each window's time, CPU time, resident set and energy
// are exact at its edges. The headline AMU, PCU, AEC and J/token cover `steps` only.
#pragma once
#include <array>
#include <cstdint>

namespace ellm {

enum class Window : std::uint8_t {
  setup,       // model construction, weight and checkpoint loading, the start barrier
  warmup,      // the training.warmup_iters first steps (left out of the latency figures too)
  steps,       // the measured steps: the window of every headline figure
  evaluation,  // validation passes between and after the steps
  checkpoint,  // checkpoint saves
  finish,      // after the last step: final checksums, export, the report's gathering
};
constexpr int kWindows = 6;
constexpr std::array<const char*, kWindows> kWindowNames = {"setup", "warmup", "steps", "evaluation", "checkpoint",
                                                            "finish"};
constexpr const char* window_name(Window w) { return kWindowNames[static_cast<int>(w)]; }

}  // namespace ellm
