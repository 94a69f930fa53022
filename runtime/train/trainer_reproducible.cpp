// The Trainer's bit-exact mode (train.reproducible: true): exact sums over samples, micro-shard
// aligned slices of every global batch, and one exact all-reduce of the gradients per step.
#include <algorithm>
#include <chrono>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/data/batch_loader.h"
#include "runtime/report/timeline.h"
#include "runtime/train/trainer.h"

namespace dptrain {

void Trainer::set_up_reproducible() {
  auto fail = [this](const std::string& why) {
    const std::string rule = "train.reproducible: " + why;
    if (config_.train.section) config_.train.section->fail("reproducible", why);
    throw ConfigError(config_.file + ": " + rule);
  };
  if (model_->device() != DeviceKind::CPU) {
    fail("bit-exact training runs on the CPU backend only, and this run's device is " +
         std::string(to_string(model_->device())) +
         " (set device: cpu, or reproducible: false; docs/reproducibility.md says what a GPU guarantees)");
  }
  const std::string layer = model_->layer_without_exact_gradients();
  if (!layer.empty()) {
    fail("layer " + layer +
         " cannot sum its gradients exactly (a batchnorm2d with stats: per_worker depends on the number of "
         "workers by design: use stats: global, or set reproducible: false)");
  }
  model_->use_exact_gradients();
}

std::string Trainer::describe_reproducible() const {
  std::ostringstream out;
  const size_t batch = config_.train.batch_size, shard = config_.train.micro_shard;
  const size_t shards = (batch + shard - 1) / shard, world = comm_->size();
  out << "reproducible: bit-exact sums over samples; each global batch is cut into " << shards << " micro-shard"
      << (shards == 1 ? "" : "s") << " of " << shard << " samples that workers take whole; gradients travel as exact "
      << "sums (" << 2 * sizeof(double) << " bytes per parameter) in one all-reduce after the backward pass";
  if (shards < world) {
    out << "\nwarning: " << world - shards << " of " << world << " workers get no micro-shard of a global batch of "
        << batch << ": lower train.micro_shard to at most " << std::max<size_t>(1, batch / world);
  } else if (world > 1 && shards % world != 0) {
    out << "\nnote: " << shards << " micro-shards over " << world << " workers: some take "
        << (shards + world - 1) / world << ", others " << shards / world
        << " (a train.micro_shard that divides the batch into a multiple of the workers evens them out)";
  }
  return out.str();
}

StepInfo Trainer::step_info(Mode mode, size_t epoch, const Batch& batch) const {
  StepInfo info{mode, config_.seed, epoch, batch.ids.data()};
  info.loss_readout = metrics_->readout();
  if (config_.train.reproducible == Reproducibility::BitExact) {
    info.summation = Summation::Exact;
    info.micro_shard = config_.train.micro_shard;
  }
  return info;
}

void Trainer::reduce_exact_gradients() {
  const auto [begin, end] = model_->trained_range();
  if (begin == end) return;
  ExactSpan all = model_->exact_gradients().span();
  ExactSpan trained{all.hi + begin, all.lo + begin, end - begin};
  if (comm_->size() > 1) {
    if (comm_->size() > exact::kMaxWorkers) {
      throw UsageError("train.reproducible: " + std::to_string(comm_->size()) + " workers are more than the " +
                       std::to_string(exact::kMaxWorkers) + " whose exact sums one all-reduce adds without loss");
    }
    TimelineSpan span(options_.timeline, "exact all-reduce", "comm");
    const auto start = std::chrono::steady_clock::now();
    if (trained.hi + trained.size == trained.lo) {
      comm_->all_reduce_sum(trained.hi, 2 * trained.size, deadline_);  // every parameter trains: one call
    } else {
      comm_->all_reduce_sum(trained.hi, trained.size, deadline_);
      comm_->all_reduce_sum(trained.lo, trained.size, deadline_);
    }
    exact_reduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  exact::to_float(trained, ExactScale::Gradient, model_->gradients().data() + begin);
}

}  // namespace dptrain
