#include "runtime/train/step_metrics.h"

#include <utility>

#include "runtime/train/lr_schedule.h"

namespace dptrain {

namespace {

void put_sums(const LossStats& stats, double* slots) {
  slots[0] = stats.loss_sum;
  slots[1] = static_cast<double>(stats.correct);
  slots[2] = static_cast<double>(stats.count);
}

}  // namespace

StepMetrics::StepMetrics(LossReadout readout, std::function<LossStats()> take,
                         std::optional<double> read_period_seconds, uint64_t record_every_steps)
    : readout_(readout), take_(std::move(take)), read_period_(read_period_seconds), record_every_(record_every_steps) {}

void StepMetrics::start(Clock::time_point now) {
  last_request_ = now;
  read_due_ = false;
  took_ = false;
  for (double& s : recorded_) s = 0;
  recorded_at_ = now;
}

bool StepMetrics::record_due(uint64_t global_step) const {
  return record_every_ > 0 && global_step > 0 && global_step % record_every_ == 0;
}

void StepMetrics::fill(const LossStats& step, double (&slots)[kSlots], Clock::time_point now, uint64_t global_step) {
  slots[3] = 0;
  took_ = false;
  if (readout_ == LossReadout::Now) {
    put_sums(step, slots);
    return;
  }
  const bool read = read_due_ || record_due(global_step);
  put_sums(read ? take_() : LossStats{}, slots);
  took_ = read;
  read_due_ = false;
  if (read_period_ && std::chrono::duration<double>(now - last_request_).count() >= *read_period_) {
    slots[3] = 1;
    last_request_ = now;
  }
}

bool StepMetrics::after_all_reduce(const double (&slots)[kSlots]) {
  read_due_ = slots[3] > 0;
  return readout_ == LossReadout::Now || took_;
}

LossStats StepMetrics::take_rest() {
  read_due_ = false;
  return readout_ == LossReadout::Later ? take_() : LossStats{};
}

std::optional<StepSummary> StepMetrics::step_record(const TrainingPosition& at, size_t steps_per_epoch,
                                                    const double (&sums)[3], const LrSchedule& schedule,
                                                    Clock::time_point now) {
  if (!record_due(at.global_step)) return std::nullopt;
  const double loss = sums[0] - recorded_[0], correct = sums[1] - recorded_[1], samples = sums[2] - recorded_[2];
  const double seconds = std::chrono::duration<double>(now - recorded_at_).count();
  StepSummary s;
  s.epoch = at.epoch + 1;
  s.step_in_epoch = at.step_in_epoch;
  s.steps_per_epoch = steps_per_epoch;
  s.step = at.global_step;
  s.loss = samples > 0 ? loss / samples : 0;
  s.train_accuracy = samples > 0 ? correct / samples : 0;
  s.running_loss = sums[2] > 0 ? sums[0] / sums[2] : 0;
  s.running_accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0;
  s.images_per_sec = seconds > 0 ? samples / seconds : 0;
  s.lr = schedule.lr(at.global_step - 1);
  for (int i = 0; i < 3; ++i) recorded_[i] = sums[i];
  recorded_at_ = now;
  return s;
}

}  // namespace dptrain
