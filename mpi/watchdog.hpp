// A watchdog on every rank: a thread that ends the job when this rank has made no progress for a
// set time — no collective has completed and no training step has ended — so that a deadlocked
// peer or a stalled network does not hold the allocation until its time limit. It names this
// rank, its host and the collective it is blocked in (Comm records which one is running), or
// says it is blocked outside any collective.
#pragma once
#include <string>

namespace ellm::mpi {

// Called by Comm around every blocking collective, and by the trainer after every step.
void collective_begins(const char* name, int ranks);
void collective_ends();
void note_progress();

// The exit status of a job the watchdog ended.
inline constexpr int kExitHang = 3;

class Watchdog {
 public:
  // Watches while it lives; timeout_s = 0 watches nothing.
  Watchdog(double timeout_s, int rank, std::string host);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  struct State;
  State* state_ = nullptr;
};

}  // namespace ellm::mpi
