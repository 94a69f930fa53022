// The signals that ask a run to stop, by the names that messages, metrics and status files use.
#pragma once

#include <csignal>

namespace dptrain {

// SIGTERM and SIGINT (a launcher or a terminal), SIGUSR2 (what mpirun forwards to every rank).
inline constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGUSR2};

// "SIGTERM", "SIGINT" or "SIGUSR2"; "a signal" for any other.
const char* stop_signal_name(int signal);

}  // namespace dptrain
