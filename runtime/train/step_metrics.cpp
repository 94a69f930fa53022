#include "runtime/train/step_metrics.h"

#include <utility>

namespace dptrain {

namespace {

void put_sums(const LossStats& stats, double* slots) {
  slots[0] = stats.loss_sum;
  slots[1] = static_cast<double>(stats.correct);
  slots[2] = static_cast<double>(stats.count);
}

}  // namespace

StepMetrics::StepMetrics(LossReadout readout, std::function<LossStats()> take, std::optional<double> read_period_seconds)
    : readout_(readout), take_(std::move(take)), read_period_(read_period_seconds) {}

void StepMetrics::start(Clock::time_point now) {
  last_request_ = now;
  read_due_ = false;
  took_ = false;
}

void StepMetrics::fill(const LossStats& step, double (&slots)[kSlots], Clock::time_point now) {
  slots[3] = 0;
  took_ = false;
  if (readout_ == LossReadout::Now) {
    put_sums(step, slots);
    return;
  }
  put_sums(read_due_ ? take_() : LossStats{}, slots);
  took_ = read_due_;
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

}  // namespace dptrain
