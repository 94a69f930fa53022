// Trainer: the training loop of one worker — data, model, gradient all-reduce, optimizer,
// evaluation, metrics and progress.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/reducer.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/data/dataset.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/report/metrics.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"
#include "runtime/core/run_config.h"

namespace dptrain {

class Timeline;

// Called on every worker for every training step with the global sample indices it trains on.
using BatchObserver = std::function<void(size_t epoch, size_t step, const std::vector<uint64_t>& ids)>;

class Trainer;

// What the workers decided at an epoch boundary.
enum class BoundaryAction {
  Continue,  // train the next epoch (perhaps with other workers: the communicator may have changed)
  Leave,     // this worker leaves the job; the others go on without it
  Stop,      // every worker stops (after saving a checkpoint); Trainer::stop_reason() says why
};

// Changes who trains between epochs (runtime/elastic/controller.h). Called on every worker at every epoch
// boundary but the last, after that boundary's checkpoint; collective.
class EpochBoundary {
 public:
  virtual ~EpochBoundary() = default;
  virtual BoundaryAction at_epoch_boundary(Trainer& trainer) = 0;
};

// How a run ended.
enum class RunEnd {
  Completed,  // every epoch trained
  Stopped,    // a stop signal, or the boundary asked to stop: see stopped_by() and stop_reason()
  Left,       // this worker left the job at an epoch boundary
};

// How a Trainer runs and reports what it does.
struct TrainerOptions {
  std::string metrics_path;                       // JSON-lines file, written by rank 0; empty: none
  ProgressStyle progress = ProgressStyle::Plain;  // while an epoch runs (rank 0 only)
  std::FILE* log = stdout;                        // where rank 0 prints; nullptr: nowhere
  std::FILE* rank_log = nullptr;                  // this worker's own log (every rank); nullptr: none
  size_t workers_on_node = 1;                     // shares the cores when threads are chosen automatically
  BatchObserver on_batch;                         // optional
  // Set (to the signal number) by a SIGTERM/SIGINT handler: every worker finishes its current step,
  // rank 0 writes a checkpoint of the position inside the epoch, and run() returns. nullptr: never.
  const std::atomic<int>* stop_signal = nullptr;
  // Records every step's phases, each bucket's all-reduce and evaluation (runtime/report/timeline.h); nullptr: off.
  Timeline* timeline = nullptr;
  // Asked at every epoch boundary who trains on (elastic membership); nullptr: the same workers throughout.
  EpochBoundary* boundary = nullptr;
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
  size_t first_step = 0;     // 0, or where a resumed epoch started
  size_t steps = 0;          // steps of the epoch trained in this run
  bool complete = true;      // false when a stop request ended the epoch early
};

// Where a run stands: the position a checkpoint records and a resumed run continues from.
struct TrainingPosition {
  size_t epoch = 0;          // 0-based epoch to continue in
  size_t step_in_epoch = 0;  // steps of `epoch` already done
  uint64_t global_step = 0;  // steps done in all
};

// Sets up a run from its config (every section is checked here, before any training) and trains it.
class Trainer {
 public:
  Trainer(RunConfig& config, Communicator& comm, TrainerOptions options = {});

  // Trains from position() to the configured number of epochs, evaluating after each and saving
  // checkpoints as configured. Returns early, after saving a checkpoint, when a stop is requested.
  std::vector<EpochSummary> run();
  // Trains epoch `epoch` (0-based) from step `first_step` without evaluating; stops early (complete
  // false) when a stop is requested.
  EpochSummary train_epoch(size_t epoch, size_t first_step = 0);
  // Loss and accuracy on the test set.
  EvalResult evaluate();

  Model& model() { return *model_; }
  const Context& context() const { return context_; }
  const Dataset& train_set() const { return *data_.train; }
  const Dataset& test_set() const { return *data_.test; }
  uint64_t global_step() const { return position_.global_step; }
  const GradientReducer& reducer() const { return *reducer_; }
  // Start-up description: data, model summary, optimizer, schedule, threads.
  std::string describe() const;

  // ---- Checkpoints (runtime/train/trainer_checkpoint.cpp) ----

  // Continues from a checkpoint: `what` is "auto" (the newest checkpoint in checkpoint.dir that
  // verifies; none there: start from the beginning) or a file. Rank 0 reads and checks it against
  // this run (seed, data set, global batch, model, optimizer) and every worker receives parameters,
  // optimizer state and position. Collective. False when "auto" found no checkpoint.
  bool resume(const std::string& what);
  // Loads only the parameters of checkpoint `path` (rank 0 reads, every worker receives them), for
  // evaluating it; returns the checkpoint's position. Collective.
  TrainingPosition load_parameters(const std::string& path);
  // The state a checkpoint of the current position holds (this worker's copy).
  CheckpointState checkpoint_state() const;
  // Rank 0 writes a checkpoint of the current position into checkpoint.dir and prunes old ones;
  // returns its path ("" on other ranks and without checkpoint.dir). Saving the same position twice
  // writes once. Not collective.
  std::string save_checkpoint();
  const TrainingPosition& position() const { return position_; }
  // The signal that stopped run() early; 0 when it ran to the end or stopped for another reason.
  int stopped_by() const { return stopped_by_; }
  // Why the run stopped when no signal stopped it (for example too few workers); "" otherwise.
  const std::string& stop_reason() const { return stop_reason_; }
  // Sets the reason given when an epoch boundary returns BoundaryAction::Stop.
  void set_stop_reason(const std::string& reason) { stop_reason_ = reason; }
  RunEnd run_end() const { return run_end_; }

  // ---- Changing workers between epochs (runtime/elastic/controller.cpp drives these) ----

  Communicator& comm() { return *comm_; }
  // Trains on `comm` from now on (after workers joined or left): the gradient reducer and the
  // device communicator are rebuilt; rank 0 must stay rank 0. `comm` must outlive its use.
  void replace_communicator(Communicator& comm);
  // Collective over the current communicator, right after workers joined: checks that every worker
  // has the same model, data and config ("" when they do, else what differs — then nothing else is
  // sent), then copies rank 0's parameters, optimizer state and position to every worker.
  std::string share_state_with_joiners();
  // The timeline this worker records into (null: none), and a timeline to record into from now on
  // (a joiner's, once it knows the job keeps one).
  Timeline* timeline() const { return options_.timeline; }
  void set_timeline(Timeline* timeline);
  // Rank 0's metrics file (empty on other ranks).
  MetricsWriter& metrics() { return metrics_; }
  // Rank 0's console (options.log); public for the elastic controller's messages.
  void log(const char* format, ...) const;

 private:
  // This worker's own log (options.rank_log), on every rank.
  void rank_log(const char* format, ...) const;
  // Fails unless every worker built the same model from the same config; then copies rank 0's parameters to all.
  void synchronize_start();
  // What differs between this worker's setup and rank 0's ("" when nothing does). Collective.
  std::string compare_setups();
  // Copies rank 0's position, optimizer step count, parameters and optimizer state to every worker
  // when rank 0's `have_state` is true; returns rank 0's `have_state`. Collective.
  bool share_root_state(bool have_state);
  // Before training from the start: checkpoint.dir must be writable, and must not hold an earlier
  // run's checkpoints (which pruning would mix with this run's). Rank 0; throws ConfigError.
  void check_checkpoint_dir() const;
  // Copies rank 0's `tensor` (host or device memory) to every worker. Collective.
  void broadcast_from_root(Tensor& tensor);
  // Whether any worker's stop_signal is set (collective when there are several workers).
  bool stop_requested_anywhere();
  // Logs and records the end of a run stopped by a signal.
  void report_stop(const std::string& checkpoint);

  RunConfig& config_;
  Communicator* comm_;
  TrainerOptions options_;
  Context context_;
  DataSplits data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  MetricsWriter metrics_;
  std::unique_ptr<Communicator> device_comm_;  // gradients on a GPU: NCCL or host staging; null on the CPU
  std::unique_ptr<GradientReducer> reducer_;
  Deadline deadline_;
  size_t steps_per_epoch_ = 0;
  TrainingPosition position_;
  bool resumed_ = false;
  int stopped_by_ = 0;
  std::string stop_reason_;
  RunEnd run_end_ = RunEnd::Completed;
  std::string last_metrics_;                     // the newest epoch record, stored in checkpoints
  std::string last_saved_;                       // path of the newest checkpoint written by this run
  uint64_t last_saved_step_ = 0;                 // its global step
  std::chrono::steady_clock::time_point last_save_time_ = std::chrono::steady_clock::now();
};

}  // namespace dptrain
