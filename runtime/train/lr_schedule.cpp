#include "runtime/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

constexpr double kPi = 3.14159265358979323846;

// A (possibly fractional) number of epochs as whole steps, rounded to the nearest.
uint64_t epochs_to_steps(double epochs, uint64_t steps_per_epoch) {
  return static_cast<uint64_t>(std::llround(epochs * static_cast<double>(steps_per_epoch)));
}

}  // namespace

LrSchedule::LrSchedule(ConfigMap& schedule, double base_lr, size_t steps_per_epoch, size_t epochs)
    : base_lr_(base_lr), total_steps_(uint64_t{steps_per_epoch} * epochs) {
  if (steps_per_epoch == 0) throw Error("lr_schedule: an epoch must have at least one step");
  if (!(base_lr > 0) || !std::isfinite(base_lr)) {
    throw Error("lr_schedule: the base learning rate must be finite and > 0, got " + format_number(base_lr));
  }
  const std::string type = schedule.get_choice("type", {"constant", "cosine", "step"}, std::string("constant"));
  type_ = type == "step" ? LrScheduleType::Step : type == "cosine" ? LrScheduleType::Cosine : LrScheduleType::Constant;

  const double warmup_epochs = schedule.get_double_checked(
      "warmup_epochs", 0.0, [](double x) { return x >= 0; }, "must be >= 0");
  if (warmup_epochs > static_cast<double>(epochs)) {
    schedule.fail("warmup_epochs", "is longer than the run (" + std::to_string(epochs) + " epochs), got " +
                                       format_number(warmup_epochs));
  }
  if (warmup_epochs > 0) warmup_steps_ = std::max<uint64_t>(1, epochs_to_steps(warmup_epochs, steps_per_epoch));
  warmup_start_factor_ = schedule.get_double_checked(
      "warmup_start_factor", warmup_start_factor_, [](double x) { return x >= 0 && x <= 1; }, "must be in [0, 1]");

  if (type_ == LrScheduleType::Step) {
    step_epochs_ = schedule.get_double_checked(
        "step_epochs", std::nullopt, [](double x) { return x > 0; }, "must be > 0");
    step_steps_ = epochs_to_steps(step_epochs_, steps_per_epoch);
    if (step_steps_ == 0) {
      schedule.fail("step_epochs", "is shorter than one step (" + std::to_string(steps_per_epoch) +
                                       " steps per epoch), got " + format_number(step_epochs_));
    }
    if (step_steps_ <= warmup_steps_) {
      schedule.fail("step_epochs", "must be longer than the warm-up (warmup_epochs " + format_number(warmup_epochs) +
                                       "), got " + format_number(step_epochs_));
    }
    gamma_ = schedule.get_double_checked(
        "gamma", gamma_, [](double x) { return x > 0 && x <= 1; }, "must be in (0, 1]");
  } else if (type_ == LrScheduleType::Cosine) {
    min_lr_ = schedule.get_double_checked(
        "min_lr", 0.0, [&](double x) { return x >= 0 && x <= base_lr; },
        "must be in [0, base lr " + format_number(base_lr) + "]");
  }
}

double LrSchedule::lr(uint64_t step) const {
  if (step < warmup_steps_) {
    const double progress = static_cast<double>(step) / static_cast<double>(warmup_steps_);
    return base_lr_ * (warmup_start_factor_ + (1.0 - warmup_start_factor_) * progress);
  }
  switch (type_) {
    case LrScheduleType::Constant:
      return base_lr_;
    case LrScheduleType::Step:
      return base_lr_ * std::pow(gamma_, static_cast<double>(step / step_steps_));
    case LrScheduleType::Cosine: {
      // Decays over the steps after the warm-up, reaching min_lr at the run's last step T - 1.
      const uint64_t last = total_steps_ > 0 ? total_steps_ - 1 : 0;
      const uint64_t span = last > warmup_steps_ ? last - warmup_steps_ : 0;
      const uint64_t done = step - warmup_steps_;
      const double progress =
          span > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(span)) : (done > 0 ? 1.0 : 0.0);
      return min_lr_ + (base_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(kPi * progress));
    }
  }
  return base_lr_;
}

std::string LrSchedule::describe() const {
  std::string text;
  switch (type_) {
    case LrScheduleType::Constant:
      text = "constant " + format_number(base_lr_);
      break;
    case LrScheduleType::Step:
      text = "step from " + format_number(base_lr_) + ", times " + format_number(gamma_) + " every " +
             format_number(step_epochs_) + " epochs (" + std::to_string(step_steps_) + " steps)";
      break;
    case LrScheduleType::Cosine:
      text = "cosine from " + format_number(base_lr_) + " to " + format_number(min_lr_);
      break;
  }
  text += " over " + std::to_string(total_steps_) + " steps";
  if (warmup_steps_ > 0) {
    text +=
        ", warm-up " + std::to_string(warmup_steps_) + " steps from " + format_number(base_lr_ * warmup_start_factor_);
  }
  return text;
}

}  // namespace dptrain
