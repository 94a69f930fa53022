// Learning-rate schedules: the lr of every global step as a pure function of the step, so a run
// resumed at any step continues exactly where it was.
//
// Config (the `lr_schedule:` mapping; the caller calls finish(), so keys of another type are rejected).
// Epoch counts may be fractional; they become steps as round(epochs * steps_per_epoch) (a positive
// warm-up lasts at least one step).
//   type: constant | step | cosine   # default constant
//   warmup_epochs: 0                  # default 0, >= 0, at most the run's epochs
//   warmup_start_factor: 0.1          # default 0.1, in [0, 1]: warm-up starts at this fraction of base_lr
//   step_epochs: 30                   # step only, required, > 0: multiply by gamma every step_epochs,
//                                     #   counted from step 0 (warm-up included), so longer than the warm-up
//   gamma: 0.1                        # step only, default 0.1, in (0, 1]
//   min_lr: 0                         # cosine only, default 0, in [0, base_lr]
//
// Warm-up (W steps): lr(s) = base_lr * (f + (1 - f) * s / W) for s < W, so step 0 uses f * base_lr and
// step W is the first at base_lr. After it:
//   constant: base_lr
//   step:     base_lr * gamma^floor(s / step_steps)
//   cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * (s - W) / (T - 1 - W))) / 2 for a run of T steps:
//             base_lr at step W, min_lr at the last step T - 1 (and after it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/core/config_map.h"

namespace dptrain {

// The shape of a schedule after its warm-up.
enum class LrScheduleType { Constant, Step, Cosine };

// Learning rate as a function of the global step.
class LrSchedule {
 public:
  // Reads the `lr_schedule:` mapping (the caller calls finish()); steps_per_epoch (> 0) and epochs fix
  // the horizon. base_lr is the optimizer's (Optimizer::base_lr()). Errors are ConfigError naming the key.
  LrSchedule(ConfigMap& schedule, double base_lr, size_t steps_per_epoch, size_t epochs);

  // The lr for the update at global step `step` (0-based); defined past the end of the run too.
  double lr(uint64_t step) const;
  // E.g. "cosine from 0.05 to 0 over 2345 steps, warm-up 469 steps from 0.005".
  std::string describe() const;

  LrScheduleType type() const { return type_; }
  double base_lr() const { return base_lr_; }
  uint64_t warmup_steps() const { return warmup_steps_; }
  // Steps in the whole run: steps_per_epoch * epochs.
  uint64_t total_steps() const { return total_steps_; }

 private:
  LrScheduleType type_ = LrScheduleType::Constant;
  double base_lr_;
  uint64_t total_steps_;
  uint64_t warmup_steps_ = 0;
  double warmup_start_factor_ = 0.1;
  uint64_t step_steps_ = 0;  // step: steps between decays
  double step_epochs_ = 0;   // step: as configured, for describe()
  double gamma_ = 0.1;       // step: factor per decay
  double min_lr_ = 0;        // cosine: lr at the last step
};

}  // namespace dptrain
