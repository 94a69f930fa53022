// TrainingRun: the launcher's whole view of the trainer. `dptrain train`, `eval`, `bench train` and
// `join` construct it from a config, a communicator and options, and then only
//   describe()            the start-up description (data, model, optimizer, schedule, workers),
//   resume(what)          continue from `--resume auto|FILE`,
//   run()                 train to the end, or until a stop or the epoch boundary ends it: how it ended,
//   evaluate_checkpoint() a checkpoint's position and test loss and accuracy,
//   train_epoch()         one epoch without evaluation, checkpoints or boundaries (benchmarks),
//   context(), train_samples()  the threads, device and precision, and the training set's size,
//   elastic_host()        what a joiner hands to the elastic controller (runtime/train/epoch_boundary.h).
// Everything else of the trainer (runtime/train/trainer.h) stays behind it.
#pragma once

#include <memory>
#include <string>

#include "layers/layer.h"
#include "runtime/core/context.h"
#include "runtime/core/run_config.h"
#include "runtime/train/epoch_boundary.h"
#include "runtime/train/quantizer.h"
#include "runtime/train/run_summary.h"
#include "runtime/train/trainer_options.h"

namespace dptrain {

class Communicator;
class Model;
class Trainer;

// One worker's part in a training run, as the launcher drives it.
class TrainingRun {
 public:
  // Checks every section of `config` and builds data, model and optimizer; collective over `comm`
  // (every worker must have built the same model; rank 0's parameters are copied to all).
  TrainingRun(RunConfig& config, Communicator& comm, TrainerOptions options = {});
  ~TrainingRun();

  std::string describe() const;
  // `what`: "auto" (the newest checkpoint in checkpoint.dir that verifies; none there: start from
  // the beginning) or a file. Collective. False when "auto" found no checkpoint.
  bool resume(const std::string& what);
  // Trains to the configured number of epochs, saving checkpoints as configured. Collective.
  RunOutcome run();
  // Loads the parameters of checkpoint `path` and evaluates them on the test set. Collective.
  CheckpointEvaluation evaluate_checkpoint(const std::string& path);
  // Loads the parameters and running statistics of checkpoint `path` into the model, to run or export
  // it (model()). Collective.
  TrainingPosition load_checkpoint_parameters(const std::string& path);
  // Calibration of int8 quantization over `batches` evaluation batches of training samples (Trainer::calibrate_int8).
  Int8Calibration calibrate_int8(size_t batches);
  // The model (its parameters as trained or loaded).
  Model& model();
  // Trains epoch `epoch` (0-based) alone: no evaluation, no checkpoint, no epoch boundary. Collective.
  EpochSummary train_epoch(size_t epoch);
  const Context& context() const;
  size_t train_samples() const;
  // Per-sample work of one training step of the model (Model::training_work).
  LayerWork training_work() const;
  // Bytes of gradients each worker all-reduces per step (train.reproducible: exact sums, 8 per parameter).
  size_t gradient_bytes_per_step() const;
  // train.reproducible as the run resolved it (never Auto): BitExact or Approximate.
  Reproducibility reproducibility() const;
  ElasticHost& elastic_host();

 private:
  std::unique_ptr<Trainer> trainer_;
};

}  // namespace dptrain
