#include "launcher/supervisor/run_status.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runtime/core/errors.h"
#include "runtime/core/parse_number.h"
#include "runtime/core/private_files.h"
#include "runtime/core/signals.h"

namespace dptrain::launcher {

namespace {

constexpr const char* kCompleted = "completed";
constexpr const char* kStoppedBySignal = "stopped by signal ";
constexpr const char* kStoppedFor = "stopped: ";
constexpr const char* kRefused = "refused: ";
constexpr const char* kFailed = "failed: ";

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// A positive decimal signal number; 0 for anything else.
int parse_signal_number(const std::string& text) {
  return static_cast<int>(parse_decimal(text, 999).value_or(0));
}

}  // namespace

RunStatus RunStatus::stopped(int signal, const std::string& reason) {
  return {JobOutcome::Stopped, signal, signal ? "" : (reason.empty() ? std::string("asked to stop") : reason)};
}

RunStatus RunStatus::from_error(const std::exception& error, const std::string& message) {
  const bool repeatable = dynamic_cast<const ConfigError*>(&error) || dynamic_cast<const UsageError*>(&error) ||
                          dynamic_cast<const ShapeError*>(&error) || dynamic_cast<const CheckpointError*>(&error);
  return {repeatable ? JobOutcome::Refused : JobOutcome::Failed, 0, message};
}

std::string to_string(const RunStatus& status) {
  switch (status.outcome) {
    case JobOutcome::Completed:
      return kCompleted;
    case JobOutcome::Stopped:
      if (status.signal == 0) return kStoppedFor + first_line(status.detail);
      for (int named : kStopSignals) {
        if (named == status.signal) return std::string("stopped ") + stop_signal_name(named);
      }
      return kStoppedBySignal + std::to_string(status.signal);
    case JobOutcome::Refused:
      return kRefused + first_line(status.detail);
    case JobOutcome::Failed:
      return kFailed + first_line(status.detail);
  }
  return kFailed + first_line(status.detail);
}

std::optional<RunStatus> parse_run_status(const std::string& line) {
  if (line == kCompleted) return RunStatus::completed();
  for (int named : kStopSignals) {
    if (line == std::string("stopped ") + stop_signal_name(named)) return RunStatus{JobOutcome::Stopped, named, ""};
  }
  if (starts_with(line, kStoppedBySignal)) {
    const int signal = parse_signal_number(line.substr(std::strlen(kStoppedBySignal)));
    if (signal > 0) return RunStatus{JobOutcome::Stopped, signal, ""};
    return std::nullopt;
  }
  if (starts_with(line, kStoppedFor)) return RunStatus{JobOutcome::Stopped, 0, line.substr(std::strlen(kStoppedFor))};
  if (starts_with(line, kRefused)) return RunStatus{JobOutcome::Refused, 0, line.substr(std::strlen(kRefused))};
  if (starts_with(line, kFailed)) return RunStatus{JobOutcome::Failed, 0, line.substr(std::strlen(kFailed))};
  return std::nullopt;
}

void write_run_status(const std::string& path, const RunStatus& status) {
  if (path.empty()) return;
  try {
    write_private_file(path, to_string(status) + "\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "dptrain: warning: --exit-status %s: cannot write it (%s)\n", path.c_str(), e.what());
  }
}

std::optional<RunStatus> read_run_status(const std::string& path) {
  const std::optional<std::string> text = read_small_file(path, 64 * 1024);
  if (!text || text->empty()) return std::nullopt;
  std::string line = text->substr(0, text->find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return parse_run_status(line);
}

void record_train_error(const std::string& path, size_t rank, const std::exception& error, const std::string& message) {
  if (path.empty() || rank != 0) return;
  write_run_status(path, RunStatus::from_error(error, message));
}

}  // namespace dptrain::launcher
