#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/train/lr_schedule.h"
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

// A step learning rate: 0.1, then 0.01 from global step 10 on (epochs of 10 steps).
LrSchedule step_schedule() {
  ConfigMap root = ConfigMap::parse("lr_schedule: {type: step, step_epochs: 1, gamma: 0.1}\n", "run.yaml");
  ConfigMap config = root.get_map("lr_schedule");
  return LrSchedule(config, 0.1, 10, 3);
}

// The epoch's running totals after a step: `sums` plus the step's own.
void add_step(double (&sums)[3], double loss, double correct, double samples) {
  sums[0] += loss;
  sums[1] += correct;
  sums[2] += samples;
}

TEST(StepMetrics, StepRecordsComeEveryNGlobalStepsWithTheStepsSinceThePreviousOne) {
  const LrSchedule schedule = step_schedule();
  StepMetrics metrics(LossReadout::Now, [] { return LossStats{}; }, std::nullopt, 4);
  EXPECT_FALSE(metrics.record_due(0));
  EXPECT_FALSE(metrics.record_due(3));
  EXPECT_TRUE(metrics.record_due(4));
  EXPECT_TRUE(metrics.record_due(12));
  const Clock::time_point t0{};
  // Epoch 2 (0-based 1) of 10 steps starts at global step 10: the first record is at global step 12.
  metrics.start(t0);
  double sums[3] = {0, 0, 0};
  TrainingPosition at{1, 0, 10};
  std::vector<StepSummary> records;
  for (int step = 1; step <= 10; ++step) {
    add_step(sums, step <= 2 ? 4.0 : 1.0, step <= 2 ? 1 : 3, 4);  // two poor steps, then good ones
    at.step_in_epoch = static_cast<size_t>(step);
    ++at.global_step;
    const auto record = metrics.step_record(at, 10, sums, schedule, t0 + seconds(step));
    EXPECT_EQ(record.has_value(), at.global_step % 4 == 0) << "global step " << at.global_step;
    if (record) records.push_back(*record);
  }
  ASSERT_EQ(records.size(), 3u);  // global steps 12, 16 and 20
  const StepSummary& first = records[0];
  EXPECT_EQ(first.epoch, 2u);
  EXPECT_EQ(first.step_in_epoch, 2u);
  EXPECT_EQ(first.steps_per_epoch, 10u);
  EXPECT_EQ(first.step, 12u);
  EXPECT_DOUBLE_EQ(first.loss, 8.0 / 8);  // the epoch's first two steps
  EXPECT_DOUBLE_EQ(first.train_accuracy, 2.0 / 8);
  EXPECT_DOUBLE_EQ(first.running_loss, first.loss);
  EXPECT_DOUBLE_EQ(first.images_per_sec, 8.0 / 2);  // 8 samples in the 2 s since the epoch started
  EXPECT_DOUBLE_EQ(first.lr, 0.01);
  const StepSummary& second = records[1];
  EXPECT_EQ(second.step, 16u);
  EXPECT_EQ(second.step_in_epoch, 6u);
  EXPECT_DOUBLE_EQ(second.loss, 4.0 / 16) << "only the four steps since the previous record";
  EXPECT_DOUBLE_EQ(second.train_accuracy, 12.0 / 16);
  EXPECT_DOUBLE_EQ(second.running_loss, 12.0 / 24) << "the epoch so far";
  EXPECT_DOUBLE_EQ(second.running_accuracy, 14.0 / 24);
  EXPECT_DOUBLE_EQ(second.images_per_sec, 16.0 / 4);
  // Off: never due.
  StepMetrics off(LossReadout::Now, [] { return LossStats{}; }, std::nullopt);
  EXPECT_FALSE(off.record_due(4));
  EXPECT_FALSE(off.step_record(at, 10, sums, schedule, t0).has_value());
}

TEST(StepMetrics, DeviceSumsAreReadAtEveryStepThatEndsWithAStepRecord) {
  RunningSums device;
  StepMetrics metrics(LossReadout::Later, [&] { return device.take(); }, std::nullopt, 3);
  const Clock::time_point t0{};
  metrics.start(t0);
  double slots[StepMetrics::kSlots];
  for (uint64_t global_step = 1; global_step <= 6; ++global_step) {
    device.running += batch(1.0, 1, 2);
    metrics.fill(LossStats{}, slots, t0 + seconds(global_step), global_step);
    EXPECT_EQ(slots[3], 0) << "every worker knows the due steps: nothing to ask";
    const bool due = global_step % 3 == 0;
    EXPECT_EQ(metrics.after_all_reduce(slots), due) << "fresh sums exactly at the due steps";
    EXPECT_EQ(slots[2], due ? 6 : 0) << "global step " << global_step << ": the three steps since the last read";
  }
  EXPECT_EQ(device.takes, 2u);
}

}  // namespace
}  // namespace dptrain
