#include "util/phases.hpp"

#include <chrono>

namespace ellm {
namespace {

struct Clock {
  bool on = false;
  Phase current = Phase::other;
  std::int64_t mark = 0;  // steady_clock ns when `current` was last charged
  std::array<std::int64_t, kPhases> ns{};
};
thread_local Clock t_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Charges the time since the last switch to the phase that was open, and opens `next`.
void switch_to(Clock& c, Phase next) {
  const std::int64_t t = now_ns();
  c.ns[std::size_t(c.current)] += t - c.mark;
  c.mark = t;
  c.current = next;
}

}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::gemm: return "gemm";
    case Phase::attention: return "attention";
    case Phase::elementwise: return "elementwise";
    case Phase::loss: return "loss";
    case Phase::optimizer: return "optimizer";
    case Phase::communication: return "communication";
    case Phase::other: return "other";
  }
  return "?";
}

double PhaseSeconds::total() const {
  double s = 0;
  for (double x : seconds) s += x;
  return s;
}

PhaseSeconds PhaseSeconds::operator-(const PhaseSeconds& earlier) const {
  PhaseSeconds d;
  for (int i = 0; i < kPhases; i++) d.seconds[i] = seconds[i] - earlier.seconds[i];
  return d;
}

void phase_clock_start() {
  t_clock = Clock{};
  t_clock.on = true;
  t_clock.mark = now_ns();
}

void phase_clock_stop() { t_clock.on = false; }

PhaseSeconds phase_clock_read() {
  PhaseSeconds s;
  Clock& c = t_clock;
  if (c.on) switch_to(c, c.current);  // bring the open phase up to now
  for (int i = 0; i < kPhases; i++) s.seconds[i] = double(c.ns[i]) * 1e-9;
  return s;
}

PhaseScope::PhaseScope(Phase p) noexcept {
  Clock& c = t_clock;
  if (!c.on || (p == Phase::gemm && c.current == Phase::attention)) return;
  active_ = true;
  outer_ = c.current;
  if (p != c.current) switch_to(c, p);
}

PhaseScope::~PhaseScope() {
  Clock& c = t_clock;
  if (!active_ || !c.on) return;
  if (c.current != outer_) switch_to(c, outer_);
}

}  // namespace ellm
