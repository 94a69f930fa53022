#include "runtime/train/run_report.h"

#include <chrono>
#include <cstdarg>

#include "runtime/core/signals.h"

namespace dptrain {

namespace {

// "after epoch 2 (global step 64)", "in epoch 3 after step 5 of 32 (global step 69)".
std::string describe_stop_position(const TrainingPosition& p, size_t steps_per_epoch) {
  char where[160];
  if (p.step_in_epoch == 0) {
    std::snprintf(where, sizeof(where), "after epoch %zu (global step %llu)", p.epoch,
                  static_cast<unsigned long long>(p.global_step));
  } else {
    std::snprintf(where, sizeof(where), "in epoch %zu after step %zu of %zu (global step %llu)", p.epoch + 1,
                  p.step_in_epoch, steps_per_epoch, static_cast<unsigned long long>(p.global_step));
  }
  return where;
}

// "2 of 3 epochs done", "in epoch 3 of 3 after step 5 of 32".
std::string describe_resume_position(const TrainingPosition& p, size_t epochs, size_t steps_per_epoch) {
  char where[160];
  if (p.step_in_epoch == 0) {
    std::snprintf(where, sizeof(where), "%llu of %zu epochs done", static_cast<unsigned long long>(p.epoch), epochs);
  } else {
    std::snprintf(where, sizeof(where), "in epoch %llu of %zu after step %llu of %zu",
                  static_cast<unsigned long long>(p.epoch + 1), epochs,
                  static_cast<unsigned long long>(p.step_in_epoch), steps_per_epoch);
  }
  return where;
}

void print(std::FILE* out, const char* format, va_list args) {
  std::vfprintf(out, format, args);
  std::fflush(out);
}

}  // namespace

RunReport::RunReport(std::FILE* log, std::FILE* rank_log, ProgressStyle progress, double progress_seconds)
    : log_(log), rank_log_(rank_log), progress_(progress), progress_seconds_(progress_seconds) {}

void RunReport::open_metrics(const std::string& path) {
  if (rank_ == 0 && !path.empty()) metrics_ = MetricsWriter(path);
}

void RunReport::log(const char* format, ...) const {
  if (rank_ != 0 || !log_) return;
  va_list args;
  va_start(args, format);
  print(log_, format, args);
  va_end(args);
}

void RunReport::rank_log(const char* format, ...) const {
  if (!rank_log_) return;
  va_list args;
  va_start(args, format);
  print(rank_log_, format, args);
  va_end(args);
}

void RunReport::started(const RunShape& shape, const TrainingPosition& at) {
  metrics_.write(MetricsRecord("start")
                     .add("run", shape.run)
                     .add("world_size", static_cast<double>(shape.world_size))
                     .add("epochs", static_cast<double>(shape.epochs))
                     .add("steps_per_epoch", static_cast<double>(shape.steps_per_epoch))
                     .add("batch_size", static_cast<double>(shape.batch_size))
                     .add("parameters", static_cast<double>(shape.parameters))
                     .add("epoch", static_cast<double>(at.epoch))
                     .add("step", static_cast<double>(at.global_step)));
}

ProgressReporter RunReport::progress(size_t epoch, size_t epochs, size_t steps) const {
  ProgressReporter progress(rank_ == 0 ? progress_ : ProgressStyle::Off, progress_seconds_, log_ ? log_ : stdout);
  progress.start_epoch(epoch, epochs, steps);
  return progress;
}

void RunReport::step_done(const StepSummary& s, size_t world_size) {
  metrics_.write(MetricsRecord("step")
                     .add("epoch", static_cast<double>(s.epoch))
                     .add("step_in_epoch", static_cast<double>(s.step_in_epoch))
                     .add("steps_per_epoch", static_cast<double>(s.steps_per_epoch))
                     .add("step", static_cast<double>(s.step))
                     .add("world_size", static_cast<double>(world_size))
                     .add("loss", s.loss)
                     .add("train_accuracy", s.train_accuracy)
                     .add("running_loss", s.running_loss)
                     .add("running_accuracy", s.running_accuracy)
                     .add("images_per_sec", s.images_per_sec)
                     .add("lr", s.lr));
}

void RunReport::epoch_done(const EpochSummary& s, size_t epochs, size_t world_size, double lr) {
  const double share = s.train_seconds > 0 ? 100.0 / s.train_seconds : 0;
  char line[320];
  std::snprintf(line, sizeof(line),
                "epoch %zu/%zu  loss %.4f  train_acc %.4f  test_loss %.4f  test_acc %.4f  %.0f img/s  %s "
                "(data wait %.1f%%, comm wait %.1f%%)\n",
                s.epoch, epochs, s.loss, s.train_accuracy, s.test.loss, s.test.accuracy, s.images_per_sec,
                format_duration(s.seconds).c_str(), share * s.data_wait_seconds, share * s.comm_wait_seconds);
  log("%s", line);
  rank_log("%s", line);
  if (s.total_sparsity >= 0) {
    std::string pruned = "  pruned " + format_percent(s.total_sparsity) + " of the pruned layers' weights:";
    for (const auto& [name, share] : s.sparsity) pruned += " " + name + " " + format_percent(share);
    log("%s\n", pruned.c_str());
    rank_log("%s\n", pruned.c_str());
  }
  MetricsRecord record = MetricsRecord("epoch")
                                   .add("epoch", static_cast<double>(s.epoch))
                                   .add("step", static_cast<double>(s.step))
                                   .add("world_size", static_cast<double>(world_size))
                                   .add("loss", s.loss)
                                   .add("train_accuracy", s.train_accuracy)
                                   .add("test_loss", s.test.loss)
                                   .add("test_accuracy", s.test.accuracy)
                                   .add("images_per_sec", s.images_per_sec)
                                   .add("lr", lr)
                                   .add("data_wait_seconds", s.data_wait_seconds)
                                   .add("comm_wait_seconds", s.comm_wait_seconds)
                                   .add("train_seconds", s.train_seconds)
                                   .add("seconds", s.seconds);
  if (s.total_sparsity >= 0) {
    record.add("sparsity", s.total_sparsity);
    for (const auto& [name, share] : s.sparsity) record.add("sparsity." + name, share);
  }
  record.add_time("time", std::chrono::system_clock::now());  // kept by checkpoints too
  metrics_.write(record);
  last_epoch_record_ = record.to_json();
}

void RunReport::completed(const std::vector<EpochSummary>& epochs, uint64_t global_step, size_t world_size,
                          double seconds) {
  log("done: %zu epochs in %s, test accuracy %.4f\n", epochs.size(), format_duration(seconds).c_str(),
      epochs.back().test.accuracy);
  metrics_.write(MetricsRecord("end")
                     .add("epoch", static_cast<double>(epochs.back().epoch))
                     .add("step", static_cast<double>(global_step))
                     .add("world_size", static_cast<double>(world_size))
                     .add("test_accuracy", epochs.back().test.accuracy)
                     .add("seconds", seconds));
}

void RunReport::stopped(const RunOutcome& outcome, const TrainingPosition& at, size_t steps_per_epoch,
                        size_t world_size, const std::string& checkpoint) {
  const bool by_signal = outcome.signal != 0 || outcome.reason.empty();
  const std::string why = by_signal ? std::string("by ") + stop_signal_name(outcome.signal) : "because " + outcome.reason;
  const std::string where = describe_stop_position(at, steps_per_epoch);
  if (checkpoint.empty()) {
    log("stopped %s %s; no checkpoint written: set checkpoint.dir to make a stopped run resumable\n", why.c_str(),
        where.c_str());
  } else {
    log("stopped %s %s; checkpoint %s; continue with --resume auto\n", why.c_str(), where.c_str(), checkpoint.c_str());
  }
  MetricsRecord record("stop");
  if (by_signal) {
    record.add("signal", stop_signal_name(outcome.signal));
  } else {
    record.add("reason", outcome.reason);
  }
  metrics_.write(record.add("epoch", static_cast<double>(at.epoch))
                     .add("step_in_epoch", static_cast<double>(at.step_in_epoch))
                     .add("step", static_cast<double>(at.global_step))
                     .add("world_size", static_cast<double>(world_size))
                     .add("checkpoint", checkpoint));
}

void RunReport::diverged(const std::string& message, const TrainingPosition& at, size_t world_size) {
  metrics_.write(MetricsRecord("diverged")
                     .add("reason", message)
                     .add("epoch", static_cast<double>(at.epoch))
                     .add("step_in_epoch", static_cast<double>(at.step_in_epoch))
                     .add("step", static_cast<double>(at.global_step))
                     .add("world_size", static_cast<double>(world_size)));
}

void RunReport::resumed(const std::string& path, const TrainingPosition& at, size_t epochs, size_t steps_per_epoch,
                        size_t saved_world_size, size_t world_size) {
  log("resumed from %s: %s (global step %llu); saved by %llu worker(s), now %zu\n", path.c_str(),
      describe_resume_position(at, epochs, steps_per_epoch).c_str(), static_cast<unsigned long long>(at.global_step),
      static_cast<unsigned long long>(saved_world_size), world_size);
  metrics_.write(MetricsRecord("resume")
                     .add("path", path)
                     .add("epoch", static_cast<double>(at.epoch))
                     .add("step_in_epoch", static_cast<double>(at.step_in_epoch))
                     .add("step", static_cast<double>(at.global_step))
                     .add("saved_world_size", static_cast<double>(saved_world_size))
                     .add("world_size", static_cast<double>(world_size)));
}

}  // namespace dptrain
