// Checks of numeric command-line options whose failures read as sentences ("--np: must be at least
// 1, got 0"), and the one place a bad command line becomes a message and exit code 2.
#pragma once

#include <CLI/CLI.hpp>
#include <limits>

namespace dptrain::launcher {

// The exit code of a bad command line (an unknown option, a missing argument, a value out of range).
constexpr int kExitBadCommandLine = 2;
// The exit code of `dptrain join` when the running job did not let the joiners in.
constexpr int kExitNotJoined = 4;

// No upper bound, for in_range.
constexpr double kNoLimit = std::numeric_limits<double>::infinity();
// Longest duration a seconds option takes: 7 days (longer waits are mistakes, and overflow clocks).
constexpr double kMaxOptionSeconds = 7 * 24 * 3600.0;

// A number option that must lie in [min, max]; the message names the range and the value given.
CLI::Validator in_range(double min, double max);
// A number option that must be greater than `bound` and at most `max` (a size in MiB, a duration).
CLI::Validator above(double bound, double max);
// Seconds: greater than 0 (or at least 0 with Zero::Allowed) and at most kMaxOptionSeconds.
enum class Zero { Refused, Allowed };
CLI::Validator seconds(Zero zero);

// Prints a parse error as "dptrain: error: MESSAGE" with a hint to the failing subcommand's --help and
// returns kExitBadCommandLine; --help and --version print as usual and return 0.
int report_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace dptrain::launcher
