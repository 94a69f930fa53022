// Stop requests: SIGTERM, SIGINT (and SIGUSR2, which mpirun forwards to every rank) ask a training run
// to finish its current step, save a checkpoint and exit; a second signal ends the process at once.
#pragma once

#include <atomic>

namespace dptrain::launcher {

// Installs the handlers and returns the flag they set to the signal's number (0 until a signal comes).
// `announce`: the first signal also prints one line on stderr saying what happens next.
const std::atomic<int>& install_stop_handlers(bool announce);

// Until this is called, a stop signal ends the process at once (128 + N): during set-up (MPI, data,
// BLAS threads) there is nothing to save and the set-up may not return soon. From here on the first
// signal finishes the current step and saves a checkpoint.
void stop_after_a_step_from_now();

// SIGUSR1 asks this worker to leave a running job at the next epoch boundary (the others go on).
// Returns the flag the handler sets (to SIGUSR1).
const std::atomic<int>& install_leave_handler();

}  // namespace dptrain::launcher
