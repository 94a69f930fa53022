#include "runtime/train/resume_point.h"

#include "runtime/core/errors.h"
#include "runtime/train/run_report.h"

namespace dptrain {

namespace {

// The newest checkpoint of checkpoint.dir that verifies, or none.
ResumeCheckpoint find_in_checkpoint_dir(const RunConfig& config, RunReport& report) {
  const std::string& dir = config.checkpoint.dir;
  if (dir.empty()) {
    throw ConfigError("--resume auto looks in checkpoint.dir, which " + config.file +
                      " does not set: set it (for example --set checkpoint.dir=checkpoints/" + config.name +
                      ") or give a checkpoint file to --resume");
  }
  ResumeCheckpoint found = find_resume_checkpoint(dir);
  for (const SkippedCheckpoint& skipped : found.skipped) {
    report.log("skipped checkpoint %s: %s\n", skipped.path.c_str(), skipped.reason.c_str());
  }
  if (!found.found() && !found.skipped.empty()) {
    throw CheckpointError(dir, "none of its " + std::to_string(found.skipped.size()) +
                                   " checkpoint(s) verifies (see above); resume from a copy with --resume FILE, "
                                   "or move them away to train from the beginning");
  }
  if (!found.found()) report.log("no checkpoint in %s yet: training from the beginning\n", dir.c_str());
  return found;
}

}  // namespace

ResumeCheckpoint find_resume_point(const std::string& what, const RunConfig& config, RunReport& report) {
  if (what == "auto") return find_in_checkpoint_dir(config, report);
  ResumeCheckpoint file;
  file.path = what;
  file.state = read_checkpoint(what);
  return file;
}

void check_resumable(const std::string& path, const CheckpointState& state, const ResumeKey& run) {
  if (!state.quantization.empty()) {
    throw CheckpointError(path, "is a quantized model (dptrain quantize), for dptrain eval and predict: it cannot be "
                                "trained further; resume from the checkpoint it was quantized from");
  }
  const std::string fix =
      "; resume with the settings it was written with (`dptrain inspect " + path + "` prints its config)";
  auto differs = [&](const char* what_differs, uint64_t saved, uint64_t now) {
    if (saved != now) {
      throw CheckpointError(path, std::string("was written with ") + what_differs + " " + std::to_string(saved) +
                                      ", but this run has " + std::to_string(now) + fix);
    }
  };
  differs("seed", state.seed, run.seed);
  differs("train.batch_size", state.global_batch, run.global_batch);
  differs("a training set of size", state.dataset_size, run.dataset_size);
  differs("steps per epoch (train.drop_last)", state.steps_per_epoch, run.steps_per_epoch);
  if (state.step_in_epoch >= state.steps_per_epoch) {
    throw CheckpointError(path, "records step " + std::to_string(state.step_in_epoch) + " of an epoch of " +
                                    std::to_string(state.steps_per_epoch) + " steps; the file is inconsistent");
  }
}

}  // namespace dptrain
