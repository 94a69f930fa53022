// Trainer: the training loop of one worker — data, model, gradient all-reduce, optimizer and
// evaluation — calling the small policies beside it: CheckpointPolicy, StopVote, RunReport,
// ReplicaSync and the EpochBoundary of elastic membership. The launcher reaches it only through
// TrainingRun (training_run.h) and the elastic controller only through ElasticHost
// (epoch_boundary.h); what is public here beyond those is for tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/reducer.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/core/run_config.h"
#include "runtime/data/dataset.h"
#include "runtime/train/batch_stats_sum.h"
#include "runtime/train/checkpoint_policy.h"
#include "runtime/train/epoch_boundary.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/pruner.h"
#include "runtime/train/quantizer.h"
#include "runtime/train/replica_sync.h"
#include "runtime/train/run_report.h"
#include "runtime/train/run_summary.h"
#include "runtime/train/step_metrics.h"
#include "runtime/train/stop_vote.h"
#include "runtime/train/trainer_options.h"

namespace dptrain {

struct Batch;

// Sets up a run from its config (every section is checked here, before any training) and trains it.
// It implements ElasticHost privately: the elastic controller gets that view through elastic_host().
class Trainer final : private ElasticHost {
 public:
  Trainer(RunConfig& config, Communicator& comm, TrainerOptions options = {});
  ~Trainer();

  // Start-up description: data, model summary, optimizer, schedule, threads.
  std::string describe() const;
  // Continues from a checkpoint: `what` is "auto" (the newest checkpoint in checkpoint.dir that
  // verifies; none there: start from the beginning) or a file. Rank 0 reads and checks it against
  // this run (seed, data set, global batch, model, optimizer) and every worker receives parameters,
  // optimizer state and position. Collective. False when "auto" found no checkpoint.
  bool resume(const std::string& what);
  // Trains from position() to the configured number of epochs, evaluating after each and saving
  // checkpoints as configured. Returns early, after saving a checkpoint, when a stop is requested
  // or the epoch boundary ends the run; outcome() then says why. Returns the epochs trained.
  std::vector<EpochSummary> run();
  // How run() ended.
  const RunOutcome& outcome() const { return outcome_; }
  // Trains epoch `epoch` (0-based) from step `first_step` without evaluating; stops early (complete
  // false) when a stop is requested.
  EpochSummary train_epoch(size_t epoch, size_t first_step = 0);
  // Loss and accuracy on the test set. Collective.
  // Runs `batches` evaluation batches of training samples, spread over the training set, through the
  // model and returns the ranges its conv2d and dense layers' inputs took (dptrain quantize). Not collective.
  Int8Calibration calibrate_int8(size_t batches);
  EvalResult evaluate();
  // Loads only the parameters of checkpoint `path` (rank 0 reads, every worker receives them), for
  // evaluating it; returns the checkpoint's position. Collective.
  TrainingPosition load_parameters(const std::string& path);

  // ---- For tests (and TrainingRun) ----

  Model& model() { return *model_; }
  const RunConfig& config() const { return config_; }
  const Context& context() const { return context_; }
  const Dataset& train_set() const { return *data_.train; }
  const TrainingPosition& position() const override { return position_; }
  uint64_t global_step() const { return position_.global_step; }
  // The signal that stopped run() early; 0 when it ran to the end or stopped for another reason.
  int stopped_by() const { return outcome_.signal; }
  // The state a checkpoint of the current position holds (this worker's copy).
  CheckpointState checkpoint_state() const;
  // What the elastic controller may use of this trainer (epoch_boundary.h).
  ElasticHost& elastic_host() { return *this; }

 private:
  // ---- ElasticHost ----
  void replace_communicator(Communicator& comm) override;
  std::string hand_over() override;
  std::string save_checkpoint() override;
  RunReport& report() override { return report_; }
  Timeline* timeline() const override { return options_.timeline; }
  void set_timeline(Timeline* timeline) override;

  // One training step on `batch` (this worker's share of a global batch of `global_batch`
  // samples); returns its loss statistics.
  LossStats train_step(const Batch& batch, size_t epoch, size_t global_batch);
  // train.reproducible: checks that the run can be (CPU, layers with exact gradients, not too many
  // workers) and binds the model's exact gradient sums.
  void set_up_reproducible();
  // The start-up line of train.reproducible.
  std::string describe_reproducible() const;
  // The StepInfo of a step: the mode, keys and, with train.reproducible, exact summation.
  StepInfo step_info(Mode mode, size_t epoch, const Batch& batch) const;
  // With train.reproducible: the reducer that sums every worker's exact gradient sums over the
  // workers, bucket by bucket during the backward pass, as reducer_ does the float gradients.
  void make_exact_reducer();
  // After it finished: the exact totals rounded into the float gradients (the same bits however the
  // batch was split).
  void round_exact_gradients();
  // Seconds the step's all-reduces were waited for after the backward pass (not hidden), so far.
  double exposed_comm_seconds() const;
  // Evaluates the epoch `s` trained, moves the position to the next epoch's start and reports it.
  void finish_epoch(EpochSummary& s, std::chrono::steady_clock::time_point epoch_start);
  // After an epoch that is not the last: the stop vote, then the epoch boundary. False when the
  // run ends here (outcome_ says how).
  bool cross_epoch_boundary();
  // Loads the non-trained state (batch-norm running statistics) of checkpoint `state` read from `path`.
  void load_buffers(const CheckpointState& state, const std::string& path);
  // Ends the run early, stopped (after saving a checkpoint of this position) for `reason`.
  void stop(const std::string& reason = "");
  // On the CPU, after the update of the step just done: its all-reduced gradients and the updated
  // parameters are finite (the same on every worker), or the run stops with diverged().
  void check_finite_update();
  // The loss sum read back after the step just done (all workers' sums, or 0 when none was read
  // back) is finite, or the run stops with diverged().
  void check_finite_loss(double loss_sum);
  // Stops the run whose training produced `what`: a "diverged" metrics record, then DivergedError
  // naming the step. Nothing is saved, so the newest checkpoint stays the last good one.
  [[noreturn]] void diverged(const std::string& what);

  RunConfig& config_;
  Communicator* comm_;
  TrainerOptions options_;
  Context context_;
  Deadline deadline_;
  RunReport report_;
  CheckpointPolicy checkpoints_;
  StopVote stop_vote_;
  DataSplits data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<ReplicaSync> replicas_;
  std::unique_ptr<Communicator> device_comm_;  // gradients on a GPU: NCCL or host staging; null on the CPU
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<BatchStatsSum> batch_stats_;  // batch-norm statistics over the workers, in host memory
  CrossWorkerSum* step_stats_ = nullptr;         // what steps sum them with (choose_batch_stats_sum)
  std::unique_ptr<StepMetrics> metrics_;        // how the steps' loss sums reach the host
  size_t steps_per_epoch_ = 0;
  TrainingPosition position_;
  RunOutcome outcome_;
  uint64_t last_finite_loss_step_ = 0;  // global step of the newest loss read back finite
  std::unique_ptr<Pruner> pruner_;  // prune: which weights are held at zero; null without pruning
  std::unique_ptr<GradientReducer> exact_reducer_;  // train.reproducible: of the exact gradient sums
  bool reproducible_auto_ = false;   // train.reproducible was auto (now resolved in config_)
  std::string reproducible_why_not_;  // with auto resolved to float sums: why
  bool exact_unrepresentable_ = false;  // a total of this step could not be sent (NaN, or too large)
};

}  // namespace dptrain
