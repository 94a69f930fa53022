// The Trainer's guard against divergence: a non-finite loss, gradient or parameter stops the run
// naming the step (and the parameter, where it can tell) before anything non-finite is saved.
#include <cmath>

#include "runtime/train/non_finite.h"
#include "runtime/train/trainer.h"

namespace dptrain {

namespace {

// The advice every divergence message ends with.
const char* const kAdvice =
    "; nothing was saved after it, so the newest checkpoint (if any) holds the last good state: lower "
    "optimizer.lr or set optimizer.clip_grad_norm, then resume from it";

}  // namespace

void Trainer::check_finite_update() {
  const auto& entries = model_->parameter_entries();
  if (const auto bad = first_non_finite(model_->gradients().data(), entries, ParamUse::Trained)) {
    diverged("the all-reduced gradient of " + *bad + " is not finite");
  }
  if (const auto bad = first_non_finite(model_->parameters().data(), entries, ParamUse::Trained)) {
    diverged("the update made parameter " + *bad + " non-finite (the learning rate is likely too high)");
  }
}

void Trainer::check_finite_loss(double loss_sum) {
  const uint64_t step = position_.global_step;
  if (std::isfinite(loss_sum)) {
    if (loss_sum != 0) last_finite_loss_step_ = step;
    return;
  }
  const std::string value = std::isnan(loss_sum) ? "nan" : "inf";
  if (metrics_->readout() == LossReadout::Now) diverged("the training loss is " + value);
  // A GPU's loss reaches the host every few steps: the first bad step lies after the last good read.
  diverged("the training loss read back from the device is " + value + " (the first non-finite step lies after step " +
           std::to_string(last_finite_loss_step_) + ")");
}

void Trainer::diverged(const std::string& what) {
  const std::string message = "training diverged at step " + std::to_string(position_.global_step) + " (epoch " +
                              std::to_string(position_.epoch + 1) + ", step " +
                              std::to_string(position_.step_in_epoch) + " of " + std::to_string(steps_per_epoch_) +
                              "): " + what + kAdvice;
  report_.diverged(message, position_, comm_->size());
  throw DivergedError(message);
}

}  // namespace dptrain
