// What a run says about itself: where it stands, what an epoch and an evaluation gave, how it ended.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dptrain {

// Where a run stands: the position a checkpoint records and a resumed run continues from.
struct TrainingPosition {
  size_t epoch = 0;          // 0-based epoch to continue in
  size_t step_in_epoch = 0;  // steps of `epoch` already done
  uint64_t global_step = 0;  // steps done in all
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
  double total_sparsity = -1;  // prune: the share of pruned weights at the epoch's end; -1 without pruning
  std::vector<std::pair<std::string, double>> sparsity;  // prune: each pruned weight's share of zeros
};

// What the steps since the previous "step" metrics record did (train.metrics_every_steps), over all workers.
struct StepSummary {
  size_t epoch = 0;            // 1-based: the epoch being trained
  size_t step_in_epoch = 0;    // steps of it done
  size_t steps_per_epoch = 0;
  uint64_t step = 0;           // global steps done
  double loss = 0;             // mean training loss over the steps since the previous record of the epoch
  double train_accuracy = 0;   // (or since the epoch's start)
  double running_loss = 0;     // mean training loss over the epoch so far
  double running_accuracy = 0;
  double images_per_sec = 0;   // training samples per second since the previous record
  double lr = 0;               // of the newest step
};

// How a run ended.
enum class RunEnd {
  Completed,  // every epoch trained
  Stopped,    // a stop signal, or the epoch boundary asked to stop: see RunOutcome
  Left,       // this worker left the job at an epoch boundary
};

// How a run ended, and why when it stopped early.
struct RunOutcome {
  RunEnd end = RunEnd::Completed;
  int signal = 0;      // the signal that stopped it (a peer's counts as SIGTERM); 0 otherwise
  std::string reason;  // why it stopped when no signal stopped it (say, too few workers); "" otherwise
};

// A checkpoint's position and how its parameters do on the test set.
struct CheckpointEvaluation {
  TrainingPosition position;
  EvalResult test;
  double seconds = 0;        // the evaluation's wall time (without loading the checkpoint)
  std::string int8_kernels;  // a quantized model: its int8 kernels (Model::int8_kernels); else empty
};

}  // namespace dptrain
