// CheckpointPolicy: when a run saves a checkpoint — after every checkpoint.every_epochs epochs and
// after the last, every checkpoint.every_minutes inside an epoch — and that it saves a position once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/run_config.h"

namespace dptrain {

class RunReport;

// The checkpoint section's timing and folder rules, and the newest checkpoint this run wrote or
// resumed from. Rank 0 alone saves; the decisions are the same on every worker but the clock's.
class CheckpointPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  // `now` reads the clock (a test passes its own).
  explicit CheckpointPolicy(const CheckpointSettings& settings, Now now = Clock::now);

  // Without checkpoint.dir nothing is saved.
  bool enabled() const { return !settings_.dir.empty(); }
  // A run starts: checkpoint.every_minutes counts from now.
  void start_clock() { last_save_time_ = now_(); }
  // After a step that is not its epoch's last: checkpoint.every_minutes (when set) have passed
  // since the last save or the run's start.
  bool due_inside_epoch() const;
  // After `epochs_done` epochs (counted from 1), the last of the run when `last`: every
  // checkpoint.every_epochs epochs, and after the last.
  bool due_after_epoch(size_t epochs_done, bool last) const;
  // The checkpoint this run wrote (or resumed from) at `global_step`, so that the same position is
  // not written twice; nullptr when there is none.
  const std::string* saved_at(uint64_t global_step) const;
  // `path` holds the position at `global_step` (written now, or resumed from); the minutes count
  // from now.
  void saved(const std::string& path, uint64_t global_step);
  // True once the run holds a checkpoint of its own: it was resumed, or it saved one.
  bool holds_checkpoint() const { return !last_saved_.empty(); }

  // Before training from the beginning (rank 0): checkpoint.dir must be writable and must not hold
  // an earlier run's checkpoints, which pruning would mix with this run's. Throws ConfigError
  // naming `config_file`.
  void check_folder_for_new_run(const std::string& config_file) const;
  // Rank 0: writes `state` into checkpoint.dir, deletes the oldest beyond checkpoint.keep, reports
  // both in `report`, and records the save; returns the new checkpoint's path.
  std::string write(const CheckpointState& state, RunReport& report);

 private:
  CheckpointSettings settings_;
  Now now_;
  std::string last_saved_;      // path of the newest checkpoint written or resumed from
  uint64_t last_saved_step_ = 0;  // its global step
  Clock::time_point last_save_time_;
};

}  // namespace dptrain
