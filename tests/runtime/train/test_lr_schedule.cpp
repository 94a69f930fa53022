#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/train/lr_schedule.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

// Builds a schedule from the body of an `lr_schedule:` mapping, checking it as the trainer does.
LrSchedule build(const std::string& body, double base_lr, size_t steps_per_epoch, size_t epochs) {
  ConfigMap root = ConfigMap::parse("lr_schedule:\n" + body, "run.yaml");
  ConfigMap config = root.get_map("lr_schedule");
  LrSchedule schedule(config, base_lr, steps_per_epoch, epochs);
  config.finish();
  return schedule;
}

// The message of the ConfigError that building `body` throws ("" if none).
std::string config_error(const std::string& body, double base_lr = 0.1, size_t steps_per_epoch = 10,
                         size_t epochs = 5) {
  try {
    build(body, base_lr, steps_per_epoch, epochs);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(LrSchedule, ConstantByDefault) {
  ConfigMap root = ConfigMap::parse("epochs: 3\n");
  ConfigMap absent = root.get_map("lr_schedule");
  LrSchedule schedule(absent, 0.1, 10, 3);
  EXPECT_EQ(schedule.type(), LrScheduleType::Constant);
  EXPECT_EQ(schedule.total_steps(), 30u);
  EXPECT_EQ(schedule.warmup_steps(), 0u);
  for (uint64_t s : {0, 1, 15, 29, 100}) EXPECT_DOUBLE_EQ(schedule.lr(s), 0.1) << "step " << s;
  EXPECT_EQ(schedule.describe(), "constant 0.1 over 30 steps");
}

TEST(LrSchedule, LinearWarmupReachesBaseLrAtItsEnd) {
  // 1 epoch of 10 steps from 0.1 * base: 0.01 at step 0, halfway at step 5, base from step 10.
  LrSchedule schedule = build("  type: constant\n  warmup_epochs: 1\n", 0.1, 10, 5);
  EXPECT_EQ(schedule.warmup_steps(), 10u);
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(schedule.lr(5), 0.1 * (0.1 + 0.9 * 0.5));
  EXPECT_DOUBLE_EQ(schedule.lr(9), 0.1 * (0.1 + 0.9 * 0.9));
  EXPECT_DOUBLE_EQ(schedule.lr(10), 0.1);
  EXPECT_DOUBLE_EQ(schedule.lr(49), 0.1);
  for (uint64_t s = 1; s <= 10; ++s) EXPECT_GT(schedule.lr(s), schedule.lr(s - 1)) << "step " << s;
  EXPECT_EQ(schedule.describe(), "constant 0.1 over 50 steps, warm-up 10 steps from 0.01");
}

TEST(LrSchedule, WarmupMayStartFromZeroAndLastFractionalEpochs) {
  // 0.25 epochs of 10 steps is 2.5 steps, rounded to 3.
  LrSchedule schedule = build("  warmup_epochs: 0.25\n  warmup_start_factor: 0\n", 0.3, 10, 2);
  EXPECT_EQ(schedule.warmup_steps(), 3u);
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(schedule.lr(1), 0.1);
  EXPECT_DOUBLE_EQ(schedule.lr(2), 0.2);
  EXPECT_DOUBLE_EQ(schedule.lr(3), 0.3);
  // A warm-up shorter than one step still lasts one.
  EXPECT_EQ(build("  warmup_epochs: 0.01\n", 0.3, 10, 2).warmup_steps(), 1u);
}

TEST(LrSchedule, StepDecaysByGammaAtEachBoundary) {
  LrSchedule schedule = build("  type: step\n  step_epochs: 2\n  gamma: 0.5\n", 0.4, 10, 6);
  EXPECT_EQ(schedule.type(), LrScheduleType::Step);
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.4);
  EXPECT_DOUBLE_EQ(schedule.lr(19), 0.4);
  EXPECT_DOUBLE_EQ(schedule.lr(20), 0.2);
  EXPECT_DOUBLE_EQ(schedule.lr(39), 0.2);
  EXPECT_DOUBLE_EQ(schedule.lr(40), 0.1);
  EXPECT_DOUBLE_EQ(schedule.lr(59), 0.1);
  for (uint64_t s = 1; s < 60; ++s) EXPECT_LE(schedule.lr(s), schedule.lr(s - 1)) << "step " << s;
  EXPECT_EQ(schedule.describe(), "step from 0.4, times 0.5 every 2 epochs (20 steps) over 60 steps");
}

TEST(LrSchedule, StepBoundariesCountFromTheStartIncludingWarmup) {
  // Decay every 1.5 epochs of 10 steps (15 steps) after a 1-epoch warm-up; default gamma 0.1.
  LrSchedule schedule = build("  type: step\n  step_epochs: 1.5\n  warmup_epochs: 1\n", 1.0, 10, 4);
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(schedule.lr(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.lr(14), 1.0);
  EXPECT_NEAR(schedule.lr(15), 0.1, 1e-15);
  EXPECT_NEAR(schedule.lr(29), 0.1, 1e-15);
  EXPECT_NEAR(schedule.lr(30), 0.01, 1e-15);
  EXPECT_NEAR(schedule.lr(39), 0.01, 1e-15);
}

TEST(LrSchedule, CosineFallsFromBaseAtWarmupEndToMinAtTheLastStep) {
  // 10 steps per epoch, 5 epochs (steps 0..49); warm-up 0.1 epochs = 1 step; cosine over steps 1..49.
  LrSchedule schedule = build("  type: cosine\n  warmup_epochs: 0.1\n  min_lr: 0.002\n", 0.05, 10, 5);
  EXPECT_EQ(schedule.type(), LrScheduleType::Cosine);
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.005);
  EXPECT_DOUBLE_EQ(schedule.lr(1), 0.05);
  EXPECT_NEAR(schedule.lr(25), (0.05 + 0.002) / 2, 1e-15);  // midpoint of steps 1..49
  const double quarter = 0.002 + (0.05 - 0.002) * 0.5 * (1 + std::cos(M_PI * 12.0 / 48.0));
  EXPECT_NEAR(schedule.lr(13), quarter, 1e-15);
  EXPECT_NEAR(schedule.lr(49), 0.002, 1e-15);
  EXPECT_NEAR(schedule.lr(80), 0.002, 1e-15);  // past the end it stays at min_lr
  for (uint64_t s = 2; s < 50; ++s) EXPECT_LT(schedule.lr(s), schedule.lr(s - 1)) << "step " << s;
  EXPECT_EQ(schedule.describe(), "cosine from 0.05 to 0.002 over 50 steps, warm-up 1 steps from 0.005");
}

TEST(LrSchedule, CosineWithoutWarmupDefaultsToZeroAtTheEnd) {
  LrSchedule schedule = build("  type: cosine\n", 0.1, 11, 3);  // steps 0..32, midpoint 16
  EXPECT_DOUBLE_EQ(schedule.lr(0), 0.1);
  EXPECT_NEAR(schedule.lr(16), 0.05, 1e-15);
  EXPECT_NEAR(schedule.lr(32), 0.0, 1e-15);
}

TEST(LrSchedule, IsAPureFunctionOfTheStep) {
  // Resuming builds a new schedule; it must agree with the old one at every step, in any order.
  const std::string body = "  type: cosine\n  warmup_epochs: 1.5\n  min_lr: 0.001\n";
  LrSchedule a = build(body, 0.1, 7, 4);
  LrSchedule b = build(body, 0.1, 7, 4);
  for (uint64_t s = 28; s-- > 0;) EXPECT_EQ(a.lr(s), b.lr(s)) << "step " << s;
}

TEST(LrScheduleConfig, UnknownTypeListsTheKnownOnes) {
  const std::string message = config_error("  type: exponential\n");
  EXPECT_NE(message.find("run.yaml:2: key 'lr_schedule.type'"), std::string::npos) << message;
  EXPECT_NE(message.find("constant, cosine, step"), std::string::npos) << message;
}

TEST(LrScheduleConfig, StepNeedsAPositiveStepLongerThanTheWarmup) {
  std::string message = config_error("  type: step\n");
  EXPECT_NE(message.find("'lr_schedule.step_epochs'"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  message = config_error("  type: step\n  step_epochs: -1\n");
  EXPECT_NE(message.find("'lr_schedule.step_epochs'"), std::string::npos) << message;
  message = config_error("  type: step\n  step_epochs: 0.01\n");
  EXPECT_NE(message.find("shorter than one step"), std::string::npos) << message;
  message = config_error("  type: step\n  step_epochs: 1\n  warmup_epochs: 2\n");
  EXPECT_NE(message.find("'lr_schedule.step_epochs'"), std::string::npos) << message;
  EXPECT_NE(message.find("warm-up"), std::string::npos) << message;
  message = config_error("  type: step\n  step_epochs: 1\n  gamma: high\n");
  EXPECT_NE(message.find("'lr_schedule.gamma'"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a number"), std::string::npos) << message;
  message = config_error("  type: step\n  step_epochs: 1\n  gamma: 0\n");
  EXPECT_NE(message.find("'lr_schedule.gamma'"), std::string::npos) << message;
}

TEST(LrScheduleConfig, WarmupMustFitTheRun) {
  std::string message = config_error("  warmup_epochs: -0.5\n");
  EXPECT_NE(message.find("'lr_schedule.warmup_epochs'"), std::string::npos) << message;
  message = config_error("  warmup_epochs: 6\n");  // the run has 5 epochs
  EXPECT_NE(message.find("'lr_schedule.warmup_epochs'"), std::string::npos) << message;
  EXPECT_NE(message.find("longer than the run"), std::string::npos) << message;
  message = config_error("  warmup_epochs: 1\n  warmup_start_factor: 2\n");
  EXPECT_NE(message.find("'lr_schedule.warmup_start_factor'"), std::string::npos) << message;
}

TEST(LrScheduleConfig, MinLrMustNotExceedTheBase) {
  const std::string message = config_error("  type: cosine\n  min_lr: 0.5\n");
  EXPECT_NE(message.find("run.yaml:3: key 'lr_schedule.min_lr'"), std::string::npos) << message;
}

TEST(LrScheduleConfig, KeysOfAnotherScheduleAreRejected) {
  std::string message = config_error("  type: step\n  step_epochs: 1\n  min_lr: 0.01\n");
  EXPECT_NE(message.find("'lr_schedule.min_lr'"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key"), std::string::npos) << message;
  message = config_error("  gamma: 0.1\n");
  EXPECT_NE(message.find("'lr_schedule.gamma'"), std::string::npos) << message;
}

TEST(LrScheduleConfig, RejectsAnEpochWithoutSteps) {
  ConfigMap config = ConfigMap::parse("type: constant\n");
  EXPECT_THROW(LrSchedule(config, 0.1, 0, 5), Error);
}

}  // namespace
}  // namespace dptrain
