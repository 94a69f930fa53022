// The Trainer's bit-exact mode (train.reproducible: true): exact sums over samples, micro-shard
// aligned slices of every global batch, and one exact all-reduce of the gradients per step.
#include <algorithm>
#include <chrono>
#include <limits>
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
  if (config_.train.reproducible != Reproducibility::BitExact) {
    // Only auto says anything here: it chose float sums, and the run should know why.
    if (reproducible_auto_) {
      out << "reproducible: float sums, the same across worker counts up to rounding (train.reproducible: auto; "
          << reproducible_why_not_ << ")";
    }
    return out.str();
  }
  const size_t batch = config_.train.batch_size, shard = config_.train.micro_shard;
  const size_t shards = (batch + shard - 1) / shard, world = comm_->size();
  out << "reproducible: bit-exact sums over samples; each global batch is cut into " << shards << " micro-shard"
      << (shards == 1 ? "" : "s") << " of " << shard << " samples that workers take whole; gradients travel as exact "
      << "sums (" << sizeof(int64_t) << " bytes per parameter), bucket by bucket during the backward pass"
      << (reproducible_auto_ ? " (train.reproducible: auto)" : "");
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

void Trainer::make_exact_reducer() {
  const auto [begin, end] = model_->trained_range();
  const size_t count = std::max<size_t>(end - begin, 1);
  int64_t* trained = model_->exact_gradients().data() + begin;
  exact_unrepresentable_ = false;
  Communicator& comm = *comm_;
  if (comm.size() > exact::kMaxWorkers) {
    throw UsageError("train.reproducible: " + std::to_string(comm.size()) + " workers are more than the " +
                     std::to_string(exact::kMaxWorkers) + " whose exact sums one all-reduce adds without loss");
  }
  // A finished bucket's exact sums (int64 units of 2^-F) are summed in place, exactly in any order.
  auto start = [this, &comm, trained](const Bucket& b) -> std::unique_ptr<CommRequest> {
    if (!exact::valid({trained + b.begin, b.end - b.begin})) exact_unrepresentable_ = true;
    return comm.all_reduce_int64_async(trained + b.begin, b.end - b.begin);
  };
  exact_reducer_ = std::make_unique<GradientReducer>(comm.size(), count, sizeof(int64_t),
                                                     static_cast<size_t>(config_.comm.bucket_mb * 1024 * 1024),
                                                     deadline_, start);
  exact_reducer_->set_timeline(options_.timeline);
}

void Trainer::round_exact_gradients() {
  const auto [begin, end] = model_->trained_range();
  if (begin == end) return;
  float* grads = model_->gradients().data() + begin;
  const ExactSpan trained{model_->exact_gradients().data() + begin, end - begin};
  // One worker: no bucket travelled; the same check as before an all-reduce.
  if (comm_->size() == 1 && !exact::valid(trained)) exact_unrepresentable_ = true;
  // Whether any worker had a total it could not send: then no worker may use the sums.
  double unrepresentable = exact_unrepresentable_ ? 1.0 : 0.0;
  if (comm_->size() > 1) comm_->all_reduce_sum(&unrepresentable, 1, deadline_);
  exact_unrepresentable_ = false;
  if (unrepresentable > 0) {
    // Non-finite or beyond 2^14: the divergence check after the update names the step.
    std::fill(grads, grads + (end - begin), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  exact::to_float(trained, ExactScale::Gradient, grads);
}

double Trainer::exposed_comm_seconds() const {
  return reducer_->exposed_seconds() + (exact_reducer_ ? exact_reducer_->exposed_seconds() : 0.0);
}

}  // namespace dptrain
