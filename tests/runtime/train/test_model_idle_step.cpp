// Model::idle_step, the training step of a worker with no sample in it: the same cross-worker sums
// and the same gradient ranges as a step, interleaved in the same order (on a GPU both are
// collectives of one NCCL communicator, which every rank must call in the same order), and zero
// gradients handed to `ready`.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/cpu_backend.h"
#include "runtime/core/rng.h"
#include "runtime/train/model.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// A sum with a second worker whose every value is 1 (so that an idle worker's statistics have a
// count), recorded as "sum N" in a shared list of events.
class RecordingSum final : public CrossWorkerSum {
 public:
  explicit RecordingSum(std::vector<std::string>& events) : events_(events) {}
  void sum(double* values, size_t count) override {
    for (size_t i = 0; i < count; ++i) values[i] += 1;
    events_.push_back("sum " + std::to_string(count));
  }

 private:
  std::vector<std::string>& events_;
};

// Batch norm at the start, inside a residual block and before the head, so that sums and
// gradient ranges interleave.
const char* const kModel = R"(model:
  - {type: conv2d, name: stem, out_channels: 4, kernel: 3, padding: 1, bias: false}
  - {type: batchnorm2d, name: bn}
  - {type: relu}
  - {type: basic_block, name: block, out_channels: 6, stride: 2}
  - {type: global_avg_pool2d}
  - {type: flatten}
  - {type: dense, name: fc, units: 3}
  - {type: softmax_cross_entropy}
)";

std::unique_ptr<Model> build(const std::vector<std::string>& frozen) {
  ConfigMap root = ConfigMap::parse(kModel, "idle.yaml");
  std::vector<ConfigMap> layers = root.get_map_list("model");
  return std::make_unique<Model>(layers, Shape{1, 6, 6}, cpu(), 3, frozen);
}

// The events of one training step: each batch-statistics sum and each `ready` range, in order.
// `idle`: the step of a worker with no sample; its ranges must hold zeros when handed over.
std::vector<std::string> step_events(Model& model, bool idle) {
  std::vector<std::string> events;
  RecordingSum sums(events);
  StepInfo info{Mode::Train};
  info.batch_stats = &sums;
  model.gradients().fill(7.0f);
  const GradsReady ready = [&](size_t begin, size_t end) {
    events.push_back("ready " + std::to_string(begin) + "-" + std::to_string(end));
    if (!idle) return;
    for (size_t i = begin; i < end; ++i) ASSERT_EQ(model.gradients().data()[i], 0.0f) << "gradient " << i;
  };
  if (idle) {
    model.idle_step(info, ready);
  } else {
    Tensor x({2, 1, 6, 6});
    Rng rng(5);
    for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = rng.normal();
    const int32_t labels[2] = {0, 2};
    model.step(x, labels, info, 0.5f, ready);
  }
  return events;
}

TEST(ModelIdleStep, SumsAndGradientRangesComeInTheOrderOfAStep) {
  auto model = build({});
  const std::vector<std::string> busy = step_events(*model, false);
  const std::vector<std::string> idle = step_events(*model, true);
  EXPECT_EQ(idle, busy);
  // Forward sums (2C + 1) first, then backward's (2C) between the ranges.
  ASSERT_FALSE(busy.empty());
  EXPECT_EQ(busy.front(), "sum 9");
  EXPECT_NE(std::find(busy.begin(), busy.end(), "sum 8"), busy.end());
  for (size_t i = 0; i < model->gradients().num_elements(); ++i) EXPECT_EQ(model->gradients().data()[i], 0.0f);
}

TEST(ModelIdleStep, FrozenLayersHandOverNoRangeInEitherStep) {
  auto model = build({"stem", "bn"});
  const std::vector<std::string> busy = step_events(*model, false);
  const std::vector<std::string> idle = step_events(*model, true);
  EXPECT_EQ(idle, busy);
}

}  // namespace
}  // namespace dptrain
