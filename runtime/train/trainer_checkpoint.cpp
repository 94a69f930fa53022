// The Trainer's checkpoints: saving the position it has reached, resuming from a saved one, and
// stopping on request.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "runtime/core/errors.h"
#include "runtime/train/model_state.h"
#include "runtime/train/trainer.h"

namespace dptrain {

namespace {

namespace fs = std::filesystem;

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR2: return "SIGUSR2";
    default: return "a signal";
  }
}

std::string format_bytes(uintmax_t bytes) {
  char text[32];
  if (bytes >= (1u << 20)) {
    std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else {
    std::snprintf(text, sizeof(text), "%.1f KiB", static_cast<double>(bytes) / (1 << 10));
  }
  return text;
}

// Rank 0's position and optimizer step count, as it broadcasts them (found: it has a state to share).
struct StateHeader {
  uint64_t found = 0;
  uint64_t epoch = 0;
  uint64_t step_in_epoch = 0;
  uint64_t global_step = 0;
  uint64_t optimizer_steps = 0;
};

}  // namespace

CheckpointState Trainer::checkpoint_state() const {
  CheckpointState state;
  state.run_name = config_.name;
  state.config_text = config_.text;
  state.seed = config_.seed;
  state.epoch = position_.epoch;
  state.step_in_epoch = position_.step_in_epoch;
  state.global_step = position_.global_step;
  state.steps_per_epoch = steps_per_epoch_;
  state.global_batch = config_.train.batch_size;
  state.dataset_size = data_.train->size();
  state.world_size = comm_->size();
  state.parameters = tensors_from_flat(model_->parameter_entries(), model_->host_parameters());
  capture_optimizer(*optimizer_, model_->parameter_entries(), state);
  state.metrics_json = last_metrics_;
  return state;
}

std::string Trainer::save_checkpoint() {
  if (comm_->rank() != 0 || config_.checkpoint.dir.empty()) return "";
  if (!last_saved_.empty() && last_saved_step_ == position_.global_step) return last_saved_;
  const auto start = std::chrono::steady_clock::now();
  const std::string path = dptrain::save_checkpoint(config_.checkpoint.dir, checkpoint_state());
  const double seconds = seconds_since(start);
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  const PruneResult pruned = prune_checkpoints(config_.checkpoint.dir, config_.checkpoint.keep);
  log("checkpoint %s (%s, %.2f s)\n", path.c_str(), ec ? "?" : format_bytes(bytes).c_str(), seconds);
  rank_log("checkpoint %s written in %.3f s\n", path.c_str(), seconds);
  for (const std::string& old : pruned.removed) rank_log("removed old checkpoint %s\n", old.c_str());
  for (const std::string& temp : pruned.removed_temp_files) rank_log("removed stale temporary file %s\n", temp.c_str());
  for (const SkippedCheckpoint& kept : pruned.not_removed) {
    log("warning: could not remove old checkpoint %s: %s\n", kept.path.c_str(), kept.reason.c_str());
  }
  metrics_.write(MetricsRecord("checkpoint")
                     .add("path", path)
                     .add("epoch", static_cast<double>(position_.epoch))
                     .add("step_in_epoch", static_cast<double>(position_.step_in_epoch))
                     .add("step", static_cast<double>(position_.global_step))
                     .add("bytes", static_cast<double>(ec ? 0 : bytes))
                     .add("seconds", seconds));
  last_saved_ = path;
  last_saved_step_ = position_.global_step;
  last_save_time_ = std::chrono::steady_clock::now();
  return path;
}

void Trainer::check_checkpoint_dir() const {
  const std::string& dir = config_.checkpoint.dir;
  if (comm_->rank() != 0 || dir.empty()) return;
  const std::string where = config_.file + ": checkpoint.dir '" + dir + "'";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ConfigError(where + ": cannot create the folder (" + ec.message() + "); choose a writable folder");
  const std::vector<CheckpointFile> existing = list_checkpoints(dir);
  if (!existing.empty()) {
    throw ConfigError(where + " already holds " + std::to_string(existing.size()) + " checkpoint(s) of an earlier run " +
                      "(newest " + existing.front().path + "): continue that run with --resume auto, or set another " +
                      "checkpoint.dir, or move them away to start from the beginning");
  }
  // Fail now rather than after the first epoch.
  const std::string probe = (fs::path(dir) / (".dptrain-write-test-" + std::to_string(::getpid()))).string();
  std::FILE* file = std::fopen(probe.c_str(), "w");
  if (!file) throw ConfigError(where + ": cannot write into the folder; choose a writable folder");
  std::fclose(file);
  fs::remove(probe, ec);
}

bool Trainer::resume(const std::string& what) {
  std::string path;
  CheckpointState state;
  bool found = false;
  if (comm_->rank() == 0) {
    if (what == "auto") {
      const std::string& dir = config_.checkpoint.dir;
      if (dir.empty()) {
        throw ConfigError("--resume auto looks in checkpoint.dir, which " + config_.file +
                          " does not set: set it (for example --set checkpoint.dir=checkpoints/" + config_.name +
                          ") or give a checkpoint file to --resume");
      }
      ResumeCheckpoint found = find_resume_checkpoint(dir);
      for (const SkippedCheckpoint& skipped : found.skipped) {
        log("skipped checkpoint %s: %s\n", skipped.path.c_str(), skipped.reason.c_str());
      }
      if (!found.found() && !found.skipped.empty()) {
        throw CheckpointError(dir, "none of its " + std::to_string(found.skipped.size()) +
                                       " checkpoint(s) verifies (see above); resume from a copy with --resume FILE, "
                                       "or move them away to train from the beginning");
      }
      if (!found.found()) log("no checkpoint in %s yet: training from the beginning\n", dir.c_str());
      path = found.path;
      state = std::move(found.state);
    } else {
      path = what;
      state = read_checkpoint(path);
    }
    if (!path.empty()) {
      const std::string fix = "; resume with the settings it was written with (`dptrain inspect " + path +
                              "` prints its config)";
      auto differs = [&](const char* what_differs, uint64_t saved, uint64_t now) {
        if (saved != now) {
          throw CheckpointError(path, std::string("was written with ") + what_differs + " " + std::to_string(saved) +
                                          ", but this run has " + std::to_string(now) + fix);
        }
      };
      differs("seed", state.seed, config_.seed);
      differs("train.batch_size", state.global_batch, config_.train.batch_size);
      differs("a training set of size", state.dataset_size, data_.train->size());
      differs("steps per epoch (train.drop_last)", state.steps_per_epoch, steps_per_epoch_);
      if (state.step_in_epoch >= state.steps_per_epoch) {
        throw CheckpointError(path, "records step " + std::to_string(state.step_in_epoch) + " of an epoch of " +
                                        std::to_string(state.steps_per_epoch) + " steps; the file is inconsistent");
      }
      Tensor params = model_->host_parameters();
      tensors_to_flat(state.parameters, model_->parameter_entries(), params, path);
      restore_optimizer(state, model_->parameter_entries(), *optimizer_, path);
      model_->load_parameters(params);
      position_ = {state.epoch, state.step_in_epoch, state.global_step};
      found = true;
    }
  }
  if (!share_root_state(found)) return false;
  const TrainingPosition& header = position_;
  if (comm_->rank() == 0) {
    char where[160];
    if (header.step_in_epoch == 0) {
      std::snprintf(where, sizeof(where), "%llu of %zu epochs done", static_cast<unsigned long long>(header.epoch),
                    config_.train.epochs);
    } else {
      std::snprintf(where, sizeof(where), "in epoch %llu of %zu after step %llu of %zu",
                    static_cast<unsigned long long>(header.epoch + 1), config_.train.epochs,
                    static_cast<unsigned long long>(header.step_in_epoch), steps_per_epoch_);
    }
    log("resumed from %s: %s (global step %llu); saved by %llu worker(s), now %zu\n", path.c_str(), where,
        static_cast<unsigned long long>(header.global_step), static_cast<unsigned long long>(state.world_size),
        comm_->size());
    metrics_.write(MetricsRecord("resume")
                       .add("path", path)
                       .add("epoch", static_cast<double>(header.epoch))
                       .add("step_in_epoch", static_cast<double>(header.step_in_epoch))
                       .add("step", static_cast<double>(header.global_step))
                       .add("saved_world_size", static_cast<double>(state.world_size))
                       .add("world_size", static_cast<double>(comm_->size())));
    last_saved_ = path;  // resuming and stopping at once does not rewrite it
    last_saved_step_ = header.global_step;
  }
  return true;
}

bool Trainer::share_root_state(bool have_state) {
  StateHeader header{have_state ? 1u : 0u, position_.epoch, position_.step_in_epoch, position_.global_step,
                     optimizer_->steps()};
  comm_->broadcast(&header, sizeof(header), 0, deadline_);
  if (!header.found) return false;
  // Host copies travel over the host communicator, whatever device the model is on.
  broadcast_from_root(model_->parameters());
  for (const auto& [name, tensor] : optimizer_->state()) broadcast_from_root(*tensor);
  optimizer_->set_steps(header.optimizer_steps);
  position_ = {header.epoch, header.step_in_epoch, header.global_step};
  // The run goes on from a saved state: the checkpoint folder is not a fresh run's.
  resumed_ = true;
  return true;
}

TrainingPosition Trainer::load_parameters(const std::string& path) {
  StateHeader header;
  if (comm_->rank() == 0) {
    const CheckpointState state = read_checkpoint(path);
    Tensor params = model_->host_parameters();
    tensors_to_flat(state.parameters, model_->parameter_entries(), params, path);
    model_->load_parameters(params);
    header = {1, state.epoch, state.step_in_epoch, state.global_step, state.optimizer_steps};
  }
  comm_->broadcast(&header, sizeof(header), 0, deadline_);
  broadcast_from_root(model_->parameters());
  return {header.epoch, header.step_in_epoch, header.global_step};
}

void Trainer::broadcast_from_root(Tensor& tensor) {
  if (comm_->size() == 1) return;
  if (tensor.device() == DeviceKind::CPU) {
    comm_->broadcast(tensor.data(), tensor.size_bytes(), 0, deadline_);
    return;
  }
  Tensor host = tensor.to_host();
  comm_->broadcast(host.data(), host.size_bytes(), 0, deadline_);
  tensor.copy_from(host);
}

bool Trainer::stop_requested_anywhere() {
  const int signal = options_.stop_signal ? options_.stop_signal->load() : 0;
  double flag = signal ? 1.0 : 0.0;
  if (comm_->size() > 1) comm_->all_reduce_sum(&flag, 1, deadline_);
  if (flag > 0) stopped_by_ = signal ? signal : SIGTERM;
  return flag > 0;
}

void Trainer::report_stop(const std::string& checkpoint) {
  const std::string name = stopped_by_ || stop_reason_.empty() ? std::string("by ") + signal_name(stopped_by_)
                                                               : "because " + stop_reason_;
  const TrainingPosition& p = position_;
  char where[160];
  if (p.step_in_epoch == 0) {
    std::snprintf(where, sizeof(where), "after epoch %zu (global step %llu)", p.epoch,
                  static_cast<unsigned long long>(p.global_step));
  } else {
    std::snprintf(where, sizeof(where), "in epoch %zu after step %zu of %zu (global step %llu)", p.epoch + 1,
                  p.step_in_epoch, steps_per_epoch_, static_cast<unsigned long long>(p.global_step));
  }
  if (checkpoint.empty()) {
    log("stopped %s %s; no checkpoint written: set checkpoint.dir to make a stopped run resumable\n", name.c_str(),
        where);
  } else {
    log("stopped %s %s; checkpoint %s; continue with --resume auto\n", name.c_str(), where, checkpoint.c_str());
  }
  MetricsRecord record("stop");
  if (stopped_by_ || stop_reason_.empty()) {
    record.add("signal", signal_name(stopped_by_));
  } else {
    record.add("reason", stop_reason_);
  }
  metrics_.write(record
                     .add("epoch", static_cast<double>(p.epoch))
                     .add("step_in_epoch", static_cast<double>(p.step_in_epoch))
                     .add("step", static_cast<double>(p.global_step))
                     .add("world_size", static_cast<double>(comm_->size()))
                     .add("checkpoint", checkpoint));
}

}  // namespace dptrain
