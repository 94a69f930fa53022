#include "runtime/train/checkpoint_policy.h"

#include <unistd.h>

#include <filesystem>
#include <utility>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/private_files.h"
#include "runtime/train/run_report.h"

namespace dptrain {

namespace fs = std::filesystem;

CheckpointPolicy::CheckpointPolicy(const CheckpointSettings& settings, Now now)
    : settings_(settings), now_(std::move(now)), last_save_time_(now_()) {}

bool CheckpointPolicy::due_inside_epoch() const {
  if (settings_.every_minutes <= 0) return false;
  return std::chrono::duration<double>(now_() - last_save_time_).count() >= settings_.every_minutes * 60;
}

bool CheckpointPolicy::due_after_epoch(size_t epochs_done, bool last) const {
  return last || epochs_done % settings_.every_epochs == 0;
}

const std::string* CheckpointPolicy::saved_at(uint64_t global_step) const {
  return !last_saved_.empty() && last_saved_step_ == global_step ? &last_saved_ : nullptr;
}

void CheckpointPolicy::saved(const std::string& path, uint64_t global_step) {
  last_saved_ = path;
  last_saved_step_ = global_step;
  last_save_time_ = now_();
}

void CheckpointPolicy::check_folder_for_new_run(const std::string& config_file) const {
  const std::string& dir = settings_.dir;
  if (dir.empty()) return;
  const std::string where = config_file + ": checkpoint.dir '" + dir + "'";
  prepare_private_folder(dir, config_file + ": checkpoint.dir");  // owner-only when created
  const std::vector<CheckpointFile> existing = list_checkpoints(dir);
  if (!existing.empty()) {
    throw ConfigError(where + " already holds " + std::to_string(existing.size()) + " checkpoint(s) of an earlier run " +
                      "(newest " + existing.front().path + "): continue that run with --resume auto, or set another " +
                      "checkpoint.dir, or move them away to start from the beginning");
  }
  // Fail now rather than after the first epoch.
  try {
    PrivateTempFile probe((fs::path(dir) / ".dptrain-write-test").string());  // removed again at once
  } catch (const Error&) {
    throw ConfigError(where + ": cannot write into the folder; choose a writable folder");
  }
}

std::string CheckpointPolicy::write(const CheckpointState& state, RunReport& report) {
  const auto start = Clock::now();
  const std::string path = save_checkpoint(settings_.dir, state);
  const double seconds = seconds_since(start);
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  const PruneResult pruned = prune_checkpoints(settings_.dir, settings_.keep);
  report.log("checkpoint %s (%s, %.2f s)\n", path.c_str(), ec ? "?" : byte_size_text(static_cast<size_t>(bytes)).c_str(), seconds);
  report.rank_log("checkpoint %s written in %.3f s\n", path.c_str(), seconds);
  for (const std::string& old : pruned.removed) report.rank_log("removed old checkpoint %s\n", old.c_str());
  for (const std::string& temp : pruned.removed_temp_files) {
    report.rank_log("removed stale temporary file %s\n", temp.c_str());
  }
  for (const SkippedCheckpoint& kept : pruned.not_removed) {
    report.log("warning: could not remove old checkpoint %s: %s\n", kept.path.c_str(), kept.reason.c_str());
  }
  report.metrics().write(MetricsRecord("checkpoint")
                             .add("path", path)
                             .add("epoch", static_cast<double>(state.epoch))
                             .add("step_in_epoch", static_cast<double>(state.step_in_epoch))
                             .add("step", static_cast<double>(state.global_step))
                             .add("bytes", static_cast<double>(ec ? 0 : bytes))
                             .add("seconds", seconds));
  saved(path, state.global_step);
  return path;
}

}  // namespace dptrain
