// SIGTERM and SIGINT (Slurm's time limit, scancel, preemption, Ctrl-C) do not end the process:
// they are noted, the trainer finishes the step it is in, saves a checkpoint and stops, and the
// job writes the run's report marked interrupted (docs/RELIABILITY.md#faults).
#pragma once

namespace ellm {

void catch_stop_signals();  // installs the handlers (once, in `run`)
int stop_signal();          // the signal received (SIGTERM or SIGINT), or 0
const char* signal_name(int signal);

}  // namespace ellm
