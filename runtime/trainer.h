// Trainer: the training loop of one worker — data, model, gradient all-reduce, optimizer,
// evaluation, metrics and progress.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/reducer.h"
#include "runtime/context.h"
#include "runtime/dataset.h"
#include "runtime/lr_schedule.h"
#include "runtime/metrics.h"
#include "runtime/model.h"
#include "runtime/optimizer.h"
#include "runtime/run_config.h"

namespace dptrain {

// Called on every worker for every training step with the global sample indices it trains on.
using BatchObserver = std::function<void(size_t epoch, size_t step, const std::vector<uint64_t>& ids)>;

// How a Trainer runs and reports what it does.
struct TrainerOptions {
  std::string metrics_path;                       // JSON-lines file, written by rank 0; empty: none
  ProgressStyle progress = ProgressStyle::Plain;  // while an epoch runs (rank 0 only)
  std::FILE* log = stdout;                        // where rank 0 prints; nullptr: nowhere
  std::FILE* rank_log = nullptr;                  // this worker's own log (every rank); nullptr: none
  size_t workers_on_node = 1;                     // shares the cores when threads are chosen automatically
  BatchObserver on_batch;                         // optional
};

// Loss and accuracy over a whole data set (all workers' shares together).
struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  size_t samples = 0;
};

// What one epoch did, over all workers.
struct EpochSummary {
  size_t epoch = 0;          // 1-based
  uint64_t step = 0;         // global steps completed so far
  double loss = 0;           // mean training loss over the epoch's samples
  double train_accuracy = 0;
  EvalResult test;
  double images_per_sec = 0; // training samples per second, all workers
  double train_seconds = 0;
  double data_wait_seconds = 0;  // mean over workers: steps waiting for their batch
  double comm_wait_seconds = 0;  // mean over workers: gradient all-reduce not hidden behind backward
  double seconds = 0;        // whole epoch including evaluation
};

// Sets up a run from its config (every section is checked here, before any training) and trains it.
class Trainer {
 public:
  Trainer(RunConfig& config, Communicator& comm, TrainerOptions options = {});

  // Trains the configured number of epochs, evaluating after each.
  std::vector<EpochSummary> run();
  // Trains one epoch (0-based `epoch`) without evaluating.
  EpochSummary train_epoch(size_t epoch);
  // Loss and accuracy on the test set.
  EvalResult evaluate();

  Model& model() { return *model_; }
  const Context& context() const { return context_; }
  const Dataset& train_set() const { return *data_.train; }
  const Dataset& test_set() const { return *data_.test; }
  uint64_t global_step() const { return global_step_; }
  const GradientReducer& reducer() const { return *reducer_; }
  // Start-up description: data, model summary, optimizer, schedule, threads.
  std::string describe() const;

 private:
  // Rank 0's console (options.log).
  void log(const char* format, ...) const;
  // This worker's own log (options.rank_log), on every rank.
  void rank_log(const char* format, ...) const;
  // Fails unless every worker built the same model from the same config; then copies rank 0's parameters to all.
  void synchronize_start();

  RunConfig& config_;
  Communicator& comm_;
  TrainerOptions options_;
  Context context_;
  DataSplits data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  MetricsWriter metrics_;
  std::unique_ptr<GradientReducer> reducer_;
  Deadline deadline_;
  size_t steps_per_epoch_ = 0;
  uint64_t global_step_ = 0;
};

}  // namespace dptrain
