// RunStatus: how a training job ended, as its rank 0 records it for `dptrain launch`
// (`dptrain train --exit-status FILE`) — one type, one serializer and one parser for the status file.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <string>

namespace dptrain::launcher {

// The ways a job can end, as the supervisor tells them apart.
enum class JobOutcome {
  Completed,  // every epoch trained
  Stopped,    // stopped early with a checkpoint: by a signal, or for a reason (too few workers)
  Refused,    // a mistake in the config, the command line or the checkpoints: a relaunch would repeat it
  Failed,     // anything else: a relaunch may succeed
};

// One line of the status file: "completed", "stopped SIGTERM", "stopped by signal N",
// "stopped: REASON", "refused: MESSAGE" or "failed: MESSAGE".
struct RunStatus {
  JobOutcome outcome = JobOutcome::Failed;
  int signal = 0;      // Stopped: the signal that asked for the stop; 0 when `detail` gives the reason
  std::string detail;  // Stopped without a signal: the reason; Refused and Failed: the message

  static RunStatus completed() { return {JobOutcome::Completed, 0, ""}; }
  // Stopped by `signal`, or (signal 0) for `reason` ("asked to stop" when empty).
  static RunStatus stopped(int signal, const std::string& reason);
  // Refused for mistakes a relaunch would repeat (ConfigError, UsageError, ShapeError,
  // CheckpointError), Failed for the rest; `message` says what happened.
  static RunStatus from_error(const std::exception& error, const std::string& message);

  // Whether the supervisor's job is done: the run completed or stopped with a checkpoint.
  bool finished() const { return outcome == JobOutcome::Completed || outcome == JobOutcome::Stopped; }
};

// The status file's line for `status` (the first line of `detail` only).
std::string to_string(const RunStatus& status);

// The status that `line` (as to_string writes it) records; nullopt for anything else.
std::optional<RunStatus> parse_run_status(const std::string& line);

// Writes `status` into `path` atomically (a temporary file in the same folder, then rename), so that
// the supervisor never reads half a status. Does nothing for an empty path; a failure is reported
// on stderr, never thrown (it is called while handling other errors).
void write_run_status(const std::string& path, const RunStatus& status);

// The status recorded in `path`: nullopt when there is no file, or its first line is empty or not a status.
std::optional<RunStatus> read_run_status(const std::string& path);

// `dptrain train --exit-status FILE` after `error` ended the run: rank 0 records
// RunStatus::from_error; other ranks write nothing.
void record_train_error(const std::string& path, size_t rank, const std::exception& error, const std::string& message);

}  // namespace dptrain::launcher
