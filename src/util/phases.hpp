// Where a training step's wall-clock time goes: a per-thread clock that charges every moment to
// one phase (GEMM, attention, elementwise, loss, optimizer, communication, or the rest), for the
// per-phase breakdown of bench_train_step --phases and of the report (docs/PERFORMANCE.md).
//
// Kernels open a PhaseScope for their phase; the clock is exclusive: a scope opened inside another
// stops the outer phase until it closes, so the phases add up to the time elapsed since
// phase_clock_start() (what no scope covers is `other`). One exception: attention's own tile GEMMs
// count as attention (a GEMM scope inside attention does nothing). Only the thread that started
// the clock is timed — the rank's main thread; the pool's workers run inside its scopes, so their
// work is charged as the wall time the main thread spends there. A scope on a thread whose clock
// is off costs one thread-local load; on, two steady_clock reads. Nothing allocates.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace ellm {

enum class Phase : std::uint8_t { gemm, attention, elementwise, loss, optimizer, communication, other };
inline constexpr int kPhases = 7;
const char* phase_name(Phase p);  // "gemm", "attention", …: the report's and the JSON's keys

struct PhaseSeconds {
  std::array<double, kPhases> seconds{};
  double operator[](Phase p) const { return seconds[std::size_t(p)]; }
  double total() const;  // all phases, `other` included: the time since phase_clock_start
  PhaseSeconds operator-(const PhaseSeconds& earlier) const;
};

// This thread: zero every phase, start charging time to `other`.
void phase_clock_start();
// This thread: stop timing (scopes become no-ops).
void phase_clock_stop();
// This thread's totals so far (the phase now open counted up to now); zeros when never started.
PhaseSeconds phase_clock_read();

class PhaseScope {
 public:
  explicit PhaseScope(Phase p) noexcept;
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  bool active_ = false;
  Phase outer_ = Phase::other;
};

}  // namespace ellm
