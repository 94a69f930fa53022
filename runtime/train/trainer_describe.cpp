// The Trainer's start-up description: the run, its workers and device, data, model, optimizer,
// schedule, batch, all-reduce and checkpoints, as `dptrain train` prints it before training.
#include <sstream>

#include "runtime/train/trainer.h"

namespace dptrain {

std::string Trainer::describe() const {
  std::ostringstream out;
  for (const std::string& warning : config_.warnings) out << "warning: " << warning << "\n";
  out << "run " << config_.name << " (" << config_.file << "), seed " << config_.seed << "\n";
  out << "workers " << comm_->size() << " (" << comm_->backend() << "), device "
      << describe_device(config_, context_.describe_device())
      << ", " << context_.num_threads() << " threads per worker, precision " << context_.describe_precision()
      << "\n";
  out << "train: " << data_.train->describe() << "\n";
  out << "test:  " << data_.test->describe() << "\n";
  if (data_.train_augment) out << "augmentation: " << data_.train_augment->describe() << "\n";
  out << "model:\n" << model_->summary() << "\n";
  const std::string kernels = model_->kernels();
  if (!kernels.empty()) {
    out << "convolution kernels: " << kernels << " (cpu_convolution: " << to_string(config_.cpu_convolution)
        << (config_.train.reproducible == Reproducibility::BitExact
                ? "; train.reproducible: one thread per micro-shard on oneDNN, per sample on im2col"
                : "")
        << ")\n";
  }
  const std::string fusions = model_->fusions();
  if (!fusions.empty()) out << "absorbed: " << fusions << " (each runs as one pass over the relu's input)\n";
  if (model_->num_conversions() > 0) out << model_->describe_activation_types() << "\n";
  out << "optimizer " << optimizer_->describe() << "\nlr schedule: " << schedule_->describe() << "\n";
  out << "global batch " << config_.train.batch_size << ", " << steps_per_epoch_ << " steps per epoch, "
      << config_.train.epochs << " epochs";
  const bool reproducible = config_.train.reproducible == Reproducibility::BitExact;
  const std::string reproducibility = describe_reproducible();
  if (!reproducibility.empty()) out << "\n" << reproducibility;
  if (pruner_) out << "\n" << pruner_->describe();
  if (comm_->size() > 1 && !reproducible) {
    const auto& buckets = reducer_->buckets();
    out << "\ngradient all-reduce: " << buckets.size() << (buckets.size() == 1 ? " bucket" : " buckets") << " of up to "
        << format_number(config_.comm.bucket_mb) << " MiB, started during backward; timeout "
        << format_number(config_.comm.timeout_seconds) << " s";
  }
  const CheckpointSettings& ckpt = config_.checkpoint;
  if (ckpt.dir.empty()) {
    out << "\ncheckpoints: none (set checkpoint.dir to save and resume)";
  } else {
    out << "\ncheckpoints: " << ckpt.dir << ", every " << ckpt.every_epochs
        << (ckpt.every_epochs == 1 ? " epoch" : " epochs");
    if (ckpt.every_minutes > 0) out << " and every " << format_number(ckpt.every_minutes) << " minutes";
    out << ", newest " << ckpt.keep << " kept";
  }
  return out.str();
}

}  // namespace dptrain
