// StepMetrics: how the loss sums of training steps reach the host and the per-step all-reduce,
// without making a GPU wait for the host every step.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include "layers/layer.h"

namespace dptrain {

// The training loss sums of an epoch on their way into the per-step all-reduce (which also carries
// the stop vote). With LossReadout::Now (the CPU, where reading costs nothing) every step's own
// sums travel in that step's all-reduce. With LossReadout::Later (a GPU) they stay in the loss
// layer's running sums on the device: the worker that draws the progress line asks for them in a
// step's all-reduce once its period has passed, every worker then reads its running sums into the
// next step's all-reduce, and the end of the epoch reads what is left (take_rest), so the device
// waits for the host only there.
class StepMetrics {
 public:
  using Clock = std::chrono::steady_clock;
  // The slots one worker adds to a step's all-reduce: loss sum, correct, samples, read requests.
  static constexpr size_t kSlots = 4;

  // `take`: reads and zeroes this worker's running sums (Later only). `read_period_seconds`: how
  // often this worker asks for the sums; nullopt: never (it draws no progress line).
  StepMetrics(LossReadout readout, std::function<LossStats()> take, std::optional<double> read_period_seconds);

  LossReadout readout() const { return readout_; }
  // At the start of an epoch (or of a run of steps): the period of read requests starts at `now`.
  void start(Clock::time_point now);
  // This worker's slots for the all-reduce of the step that returned `step` (zeros with Later):
  // the step's sums (Now) or the running sums when the last all-reduce asked for them (Later), and
  // this worker's read request.
  void fill(const LossStats& step, double (&slots)[kSlots], Clock::time_point now);
  // After the all-reduce of `slots` (sums over all workers): true when the sums in it are fresh,
  // so that a progress line drawn from the epoch's running totals is current.
  bool after_all_reduce(const double (&slots)[kSlots]);
  // At the end of the epoch: this worker's sums not yet in any all-reduce (zeros with Now).
  LossStats take_rest();

 private:
  LossReadout readout_;
  std::function<LossStats()> take_;
  std::optional<double> read_period_;
  Clock::time_point last_request_{};
  bool read_due_ = false;  // the last all-reduce asked every worker to read its sums
  bool took_ = false;      // fill() read the running sums into this step's slots
};

}  // namespace dptrain
