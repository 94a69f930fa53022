#include "runtime/train/training_run.h"

#include <chrono>

#include "runtime/train/trainer.h"

namespace dptrain {

TrainingRun::TrainingRun(RunConfig& config, Communicator& comm, TrainerOptions options)
    : trainer_(std::make_unique<Trainer>(config, comm, std::move(options))) {}

TrainingRun::~TrainingRun() = default;

std::string TrainingRun::describe() const { return trainer_->describe(); }

bool TrainingRun::resume(const std::string& what) { return trainer_->resume(what); }

RunOutcome TrainingRun::run() {
  trainer_->run();
  return trainer_->outcome();
}

CheckpointEvaluation TrainingRun::evaluate_checkpoint(const std::string& path) {
  CheckpointEvaluation evaluation;
  evaluation.position = trainer_->load_parameters(path);
  const auto start = std::chrono::steady_clock::now();
  evaluation.test = trainer_->evaluate();
  evaluation.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  evaluation.int8_kernels = trainer_->model().int8_kernels();
  return evaluation;
}

TrainingPosition TrainingRun::load_checkpoint_parameters(const std::string& path) {
  return trainer_->load_parameters(path);
}

Model& TrainingRun::model() { return trainer_->model(); }

Int8Calibration TrainingRun::calibrate_int8(size_t batches) { return trainer_->calibrate_int8(batches); }

EpochSummary TrainingRun::train_epoch(size_t epoch) { return trainer_->train_epoch(epoch); }

const Context& TrainingRun::context() const { return trainer_->context(); }

LayerWork TrainingRun::training_work() const { return trainer_->model().training_work(); }

Reproducibility TrainingRun::reproducibility() const { return trainer_->config().train.reproducible; }

size_t TrainingRun::gradient_bytes_per_step() const {
  const auto [begin, end] = trainer_->model().trained_range();
  const bool exact = reproducibility() == Reproducibility::BitExact;
  return (end - begin) * (exact ? sizeof(int64_t) : sizeof(float));
}

size_t TrainingRun::train_samples() const { return trainer_->train_set().size(); }

ElasticHost& TrainingRun::elastic_host() { return trainer_->elastic_host(); }

}  // namespace dptrain
