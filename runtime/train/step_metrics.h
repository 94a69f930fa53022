// StepMetrics: how the loss sums of training steps reach the host and the per-step all-reduce,
// without making a GPU wait for the host every step, and the "step" metrics records made of them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "layers/layer.h"
#include "runtime/train/run_summary.h"

namespace dptrain {

class LrSchedule;

// The training loss sums of an epoch on their way into the per-step all-reduce (which also carries
// the stop vote). With LossReadout::Now (the CPU, where reading costs nothing) every step's own
// sums travel in that step's all-reduce. With LossReadout::Later (a GPU) they stay in the loss
// layer's running sums on the device: the worker that draws the progress line asks for them in a
// step's all-reduce once its period has passed, every worker then reads its running sums into the
// next step's all-reduce, and the end of the epoch reads what is left (take_rest), so the device
// waits for the host only there.
// With train.metrics_every_steps N, every worker also reads its sums at each global step that is a
// multiple of N (every worker knows which those are: no request needed), so that the "step" record of
// that step is made of fresh sums.
class StepMetrics {
 public:
  using Clock = std::chrono::steady_clock;
  // The slots one worker adds to a step's all-reduce: loss sum, correct, samples, read requests.
  static constexpr size_t kSlots = 4;

  // `take`: reads and zeroes this worker's running sums (Later only). `read_period_seconds`: how
  // often this worker asks for the sums; nullopt: never (it draws no progress line).
  // `record_every_steps`: train.metrics_every_steps (0: no step records).
  StepMetrics(LossReadout readout, std::function<LossStats()> take, std::optional<double> read_period_seconds,
              uint64_t record_every_steps = 0);

  LossReadout readout() const { return readout_; }
  // At the start of an epoch (or of a run of steps): the period of read requests and the interval of
  // the next step record start at `now`.
  void start(Clock::time_point now);
  // Whether the step that made `global_step` steps done ends with a "step" record.
  bool record_due(uint64_t global_step) const;
  // This worker's slots for the all-reduce of the step that returned `step` and made `global_step`
  // steps done (zeros with Later): the step's sums (Now) or the running sums when the last all-reduce
  // asked for them or a step record is due (Later), and this worker's read request.
  void fill(const LossStats& step, double (&slots)[kSlots], Clock::time_point now, uint64_t global_step = 0);
  // After the all-reduce of `slots` (sums over all workers): true when the sums in it are fresh,
  // so that a progress line drawn from the epoch's running totals is current.
  bool after_all_reduce(const double (&slots)[kSlots]);
  // At the end of the epoch: this worker's sums not yet in any all-reduce (zeros with Now).
  LossStats take_rest();
  // After the all-reduce of the step that made position `at` (epoch of `steps_per_epoch` steps): the
  // step record when one is due there. `sums`: the epoch's running totals so far (loss sum, correct,
  // samples; all workers), fresh at a due step; `schedule` gives the rate the step trained at.
  std::optional<StepSummary> step_record(const TrainingPosition& at, size_t steps_per_epoch, const double (&sums)[3],
                                         const LrSchedule& schedule, Clock::time_point now);

 private:
  LossReadout readout_;
  std::function<LossStats()> take_;
  std::optional<double> read_period_;
  Clock::time_point last_request_{};
  bool read_due_ = false;  // the last all-reduce asked every worker to read its sums
  bool took_ = false;      // fill() read the running sums into this step's slots
  uint64_t record_every_ = 0;
  double recorded_[3] = {0, 0, 0};  // the epoch's running totals at the previous step record
  Clock::time_point recorded_at_{};
};

}  // namespace dptrain
