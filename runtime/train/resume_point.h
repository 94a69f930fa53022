// Where a run continues from: the checkpoint `--resume auto|FILE` names, and the check that it was
// written by this run (same seed, global batch, training set and steps per epoch).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/run_config.h"

namespace dptrain {

class RunReport;

// What a checkpoint must agree on with the run that resumes it.
struct ResumeKey {
  uint64_t seed = 0;
  uint64_t global_batch = 0;
  uint64_t dataset_size = 0;
  uint64_t steps_per_epoch = 0;
};

// The checkpoint to resume from: `what` is "auto" (the newest checkpoint in checkpoint.dir that
// verifies; the path is empty when there is none, and skipped files are logged in `report`) or a
// file. Throws ConfigError for "auto" without checkpoint.dir, CheckpointError when no checkpoint
// of the folder verifies or the file cannot be read.
ResumeCheckpoint find_resume_point(const std::string& what, const RunConfig& config, RunReport& report);

// Throws CheckpointError naming `path`, what differs and the fix unless `state` was written with
// `run`'s key and records a step inside its epoch.
void check_resumable(const std::string& path, const CheckpointState& state, const ResumeKey& run);

}  // namespace dptrain
