// RunReport: what a run tells people — rank 0's console lines and progress line, every worker's
// own log, and rank 0's metrics records (start, step, epoch, resume, checkpoint, stop, end).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/report/metrics.h"
#include "runtime/train/run_summary.h"

namespace dptrain {

// The numbers a run's "start" record holds besides its position.
struct RunShape {
  std::string run;  // the config's name
  size_t world_size = 0;
  size_t epochs = 0;
  size_t steps_per_epoch = 0;
  size_t batch_size = 0;
  size_t parameters = 0;
};

// Rank 0's console and metrics, and this worker's own log. Only rank 0 prints to the console and
// writes metrics: set_rank() follows the worker's rank when its communicator changes.
class RunReport {
 public:
  // `log`: rank 0's console (nullptr: none); `rank_log`: this worker's own log (nullptr: none);
  // `progress`, `progress_seconds`: the progress line while an epoch runs.
  RunReport(std::FILE* log, std::FILE* rank_log, ProgressStyle progress, double progress_seconds);

  // Rank 0: metrics records go to `path` (JSON lines) from now on; empty: nowhere.
  void open_metrics(const std::string& path);
  void set_rank(size_t rank) { rank_ = rank; }

  // printf to rank 0's console (nothing on other ranks), flushed.
  void log(const char* format, ...) const __attribute__((format(printf, 2, 3)));
  // printf to this worker's own log, flushed.
  void rank_log(const char* format, ...) const __attribute__((format(printf, 2, 3)));
  MetricsWriter& metrics() { return metrics_; }

  // The run starts training at `at`: the "start" record.
  void started(const RunShape& shape, const TrainingPosition& at);
  // The progress line of epoch `epoch` (1-based) of `epochs`, of `steps` steps (off on other ranks).
  ProgressReporter progress(size_t epoch, size_t epochs, size_t steps) const;
  // Steps of an epoch (train.metrics_every_steps): their "step" record, trained by `world_size` workers.
  void step_done(const StepSummary& s, size_t world_size);
  // An evaluated epoch: its line (console and rank log) and its "epoch" record, trained at rate `lr`.
  void epoch_done(const EpochSummary& s, size_t epochs, size_t world_size, double lr);
  // The newest "epoch" record as JSON, as the metrics file has it ("" before the first), which checkpoints store.
  const std::string& last_epoch_record() const { return last_epoch_record_; }
  // Every epoch trained: the "done" line and the "end" record.
  void completed(const std::vector<EpochSummary>& epochs, uint64_t global_step, size_t world_size, double seconds);
  // The run stopped early at `at` (`checkpoint`: the checkpoint of that position, "" when none).
  void stopped(const RunOutcome& outcome, const TrainingPosition& at, size_t steps_per_epoch, size_t world_size,
               const std::string& checkpoint);
  // Training diverged at `at` (a non-finite loss, gradient or parameter): `message` on the console and a
  // "diverged" record with it as `reason`.
  void diverged(const std::string& message, const TrainingPosition& at, size_t world_size);
  // The run continues from checkpoint `path`, saved by `saved_world_size` workers.
  void resumed(const std::string& path, const TrainingPosition& at, size_t epochs, size_t steps_per_epoch,
               size_t saved_world_size, size_t world_size);

 private:
  std::FILE* log_;
  std::FILE* rank_log_;
  ProgressStyle progress_;
  double progress_seconds_;
  size_t rank_ = 0;
  MetricsWriter metrics_;
  std::string last_epoch_record_;
};

}  // namespace dptrain
