#include <gtest/gtest.h>

#include <chrono>

#include "runtime/train/step_metrics.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using Clock = StepMetrics::Clock;
using std::chrono::seconds;

// A loss layer's running sums as a GPU keeps them: steps add, take() reads and zeroes.
struct RunningSums {
  LossStats running;
  size_t takes = 0;
  LossStats take() {
    ++takes;
    const LossStats taken = running;
    running = {};
    return taken;
  }
};

LossStats batch(double loss, size_t correct, size_t count) {
  LossStats s;
  s.loss_sum = loss;
  s.correct = correct;
  s.count = count;
  return s;
}

TEST(StepMetrics, ReadingAtOnceSendsEveryStepsOwnSumsAndNeverTakes) {
  RunningSums device;
  StepMetrics metrics(LossReadout::Now, [&] { return device.take(); }, 1.0);
  const Clock::time_point t0{};
  metrics.start(t0);
  double slots[StepMetrics::kSlots];
  metrics.fill(batch(2.5, 3, 4), slots, t0 + seconds(5));
  EXPECT_EQ(slots[0], 2.5);
  EXPECT_EQ(slots[1], 3);
  EXPECT_EQ(slots[2], 4);
  EXPECT_EQ(slots[3], 0) << "with the sums at hand every step there is nothing to ask for";
  EXPECT_TRUE(metrics.after_all_reduce(slots));
  const LossStats rest = metrics.take_rest();
  EXPECT_EQ(rest.count, 0u);
  EXPECT_EQ(device.takes, 0u);
}

TEST(StepMetrics, DeviceSumsAreReadOnlyTheStepAfterTheProgressPeriodAskedAndAtTheEnd) {
  RunningSums device;
  StepMetrics metrics(LossReadout::Later, [&] { return device.take(); }, 10.0);
  const Clock::time_point t0{};
  metrics.start(t0);
  double slots[StepMetrics::kSlots];
  // Steps before the period: nothing read, nothing asked, nothing fresh to draw.
  for (int step = 1; step <= 3; ++step) {
    device.running += batch(1.0, 1, 2);
    metrics.fill(LossStats{}, slots, t0 + seconds(step));
    EXPECT_EQ(slots[2], 0);
    EXPECT_EQ(slots[3], 0);
    EXPECT_FALSE(metrics.after_all_reduce(slots));
  }
  EXPECT_EQ(device.takes, 0u) << "the device must not be waited for between progress lines";
  // The period has passed: this worker asks, in this step's all-reduce.
  device.running += batch(1.0, 1, 2);
  metrics.fill(LossStats{}, slots, t0 + seconds(11));
  EXPECT_EQ(slots[3], 1);
  EXPECT_EQ(device.takes, 0u);
  EXPECT_FALSE(metrics.after_all_reduce(slots));
  // The next step carries every sum so far and is fresh.
  device.running += batch(1.0, 0, 2);
  metrics.fill(LossStats{}, slots, t0 + seconds(12));
  EXPECT_EQ(device.takes, 1u);
  EXPECT_EQ(slots[0], 5.0);
  EXPECT_EQ(slots[1], 4);
  EXPECT_EQ(slots[2], 10);
  EXPECT_EQ(slots[3], 0) << "the period restarts when asked";
  EXPECT_TRUE(metrics.after_all_reduce(slots));
  // One more step, then the end of the epoch reads the rest.
  device.running += batch(0.5, 2, 2);
  metrics.fill(LossStats{}, slots, t0 + seconds(13));
  EXPECT_FALSE(metrics.after_all_reduce(slots));
  const LossStats rest = metrics.take_rest();
  EXPECT_EQ(device.takes, 2u);
  EXPECT_EQ(rest.loss_sum, 0.5);
  EXPECT_EQ(rest.correct, 2u);
  EXPECT_EQ(rest.count, 2u);
}

TEST(StepMetrics, AWorkerThatDrawsNoProgressNeverAsksButReadsWhenAPeerAsked) {
  RunningSums device;
  StepMetrics metrics(LossReadout::Later, [&] { return device.take(); }, std::nullopt);
  const Clock::time_point t0{};
  metrics.start(t0);
  double slots[StepMetrics::kSlots];
  device.running += batch(2.0, 1, 2);
  metrics.fill(LossStats{}, slots, t0 + seconds(1000));
  EXPECT_EQ(slots[3], 0);
  slots[3] = 1;  // rank 0's request, summed in by the all-reduce
  EXPECT_FALSE(metrics.after_all_reduce(slots));
  metrics.fill(LossStats{}, slots, t0 + seconds(1001));
  EXPECT_EQ(device.takes, 1u);
  EXPECT_EQ(slots[0], 2.0);
  EXPECT_EQ(slots[2], 2);
  EXPECT_TRUE(metrics.after_all_reduce(slots));
}

TEST(StepMetrics, ARequestLeftOpenAtTheEndOfAnEpochIsNotCarriedIntoTheNext) {
  RunningSums device;
  StepMetrics metrics(LossReadout::Later, [&] { return device.take(); }, 1.0);
  const Clock::time_point t0{};
  metrics.start(t0);
  double slots[StepMetrics::kSlots];
  metrics.fill(LossStats{}, slots, t0 + seconds(2));
  EXPECT_EQ(slots[3], 1);
  metrics.after_all_reduce(slots);
  metrics.take_rest();
  EXPECT_EQ(device.takes, 1u);
  metrics.start(t0 + seconds(3));
  metrics.fill(LossStats{}, slots, t0 + seconds(3));
  EXPECT_EQ(device.takes, 1u) << "the rest was read already";
  EXPECT_EQ(slots[3], 0);
}

}  // namespace
}  // namespace dptrain
