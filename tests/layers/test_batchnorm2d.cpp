// batchnorm2d on the CPU: values against a direct computation, running statistics, evaluation,
// finite-difference gradients, statistics summed over (simulated) workers, and how a step's
// statistics are summed (the layout of the summed vectors, host or device memory).
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "layers/batchnorm2d.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"
#include "tests/layers/threads_sum.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::bind_fresh_parameters;
using testing::expect_gradients_match;
using testing::make_layer;
using testing::ThreadsSum;

Tensor random_batch(const Shape& shape, uint64_t seed, float offset = 0.0f) {
  Tensor x(shape);
  Rng rng(seed);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = offset + 2.0f * rng.normal();
  return x;
}

TEST(BatchNorm2d, TrainingNormalisesEachChannelOverBatchAndPlane) {
  auto layer = make_layer("{type: batchnorm2d}", {3, 4, 5});
  testing::BoundParams bound = bind_fresh_parameters(*layer, 3);
  const Tensor x = random_batch({6, 3, 4, 5}, 1, 1.5f);
  Tensor y({6, 3, 4, 5});
  layer->forward(x, y, StepInfo{Mode::Train});
  for (size_t c = 0; c < 3; ++c) {
    double sum = 0, squares = 0;
    for (size_t n = 0; n < 6; ++n) {
      for (size_t i = 0; i < 20; ++i) {
        const double v = x.data()[(n * 3 + c) * 20 + i];
        sum += v;
        squares += v * v;
      }
    }
    const double mean = sum / 120, var = squares / 120 - mean * mean;
    const float w = bound.params[0].data()[c], b = bound.params[1].data()[c];
    for (size_t n = 0; n < 6; n += 5) {
      const size_t at = (n * 3 + c) * 20 + 7;
      const double expected = (x.data()[at] - mean) / std::sqrt(var + 1e-5) * w + b;
      EXPECT_NEAR(y.data()[at], expected, 1e-4) << "channel " << c;
    }
    // Running statistics: momentum 0.1 from (0, 1), with the unbiased variance.
    EXPECT_NEAR(bound.buffers[0].data()[c], 0.1 * mean, 1e-5);
    EXPECT_NEAR(bound.buffers[1].data()[c], 0.9 + 0.1 * var * 120 / 119, 1e-4);
  }
}

TEST(BatchNorm2d, EvaluationUsesTheRunningStatistics) {
  auto layer = make_layer("{type: batchnorm2d, eps: 0.001, affine: false}", {2, 3, 3});
  testing::BoundParams bound = bind_fresh_parameters(*layer, 4);
  ASSERT_TRUE(bound.params.empty());
  bound.buffers[0].data()[0] = 0.5f;
  bound.buffers[1].data()[0] = 4.0f;
  bound.buffers[0].data()[1] = -1.0f;
  bound.buffers[1].data()[1] = 0.25f;
  const Tensor x = random_batch({2, 2, 3, 3}, 2);
  Tensor y(x.shape());
  layer->forward(x, y, StepInfo{Mode::Eval});
  EXPECT_NEAR(y.data()[4], (x.data()[4] - 0.5) / std::sqrt(4.001), 1e-5);
  EXPECT_NEAR(y.data()[9 + 4], (x.data()[9 + 4] + 1.0) / std::sqrt(0.251), 1e-5);
  EXPECT_EQ(bound.buffers[0].data()[0], 0.5f);  // evaluation leaves them alone
}

TEST(BatchNorm2d, GradientsMatchFiniteDifferences) {
  auto layer = make_layer("{type: batchnorm2d}", {3, 4, 4});
  testing::GradCheckOptions opt;
  opt.eps = 1e-2;
  opt.tolerance = 2e-2;
  expect_gradients_match(*layer, 5, 21, opt);
}

TEST(BatchNorm2d, GradientsMatchFiniteDifferencesForDenseFeaturesWithoutAffine) {
  auto layer = make_layer("{type: batchnorm2d, affine: false}", {7});
  expect_gradients_match(*layer, 6, 22);
}

TEST(BatchNorm2d, StatisticsSummedOverWorkersEqualOneWorkerWithTheWholeBatch) {
  // One batch of 6, against the same batch cut 3 + 2 + 1 over three layers (on three threads)
  // whose batch statistics are summed as three workers' would be.
  auto whole = make_layer("{type: batchnorm2d}", {2, 3, 3});
  testing::BoundParams whole_params = bind_fresh_parameters(*whole, 5);
  const Tensor x = random_batch({6, 2, 3, 3}, 9, 0.5f);
  Tensor y(x.shape()), dx(x.shape());
  const Tensor dy = random_batch(x.shape(), 10);
  whole->forward(x, y, StepInfo{Mode::Train});
  whole->backward(x, y, dy, &dx, StepInfo{Mode::Train});

  ThreadsSum shared(3);
  const size_t cuts[] = {0, 3, 5, 6};
  const size_t sample = 18;  // floats per sample
  std::vector<std::unique_ptr<Layer>> parts;
  std::vector<testing::BoundParams> bound;
  std::vector<Tensor> ys, dxs;
  for (int w = 0; w < 3; ++w) {
    parts.push_back(make_layer("{type: batchnorm2d}", {2, 3, 3}));
    bound.push_back(bind_fresh_parameters(*parts.back(), 5));
    const size_t n = cuts[w + 1] - cuts[w];
    ys.emplace_back(Shape{n, 2, 3, 3});
    dxs.emplace_back(Shape{n, 2, 3, 3});
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      const size_t n = cuts[w + 1] - cuts[w], offset = cuts[w] * sample;
      const Tensor xs = Tensor::view(const_cast<float*>(x.data()) + offset, {n, 2, 3, 3});
      const Tensor dys = Tensor::view(const_cast<float*>(dy.data()) + offset, {n, 2, 3, 3});
      StepInfo step{Mode::Train};
      step.batch_stats = &shared;
      parts[w]->forward(xs, ys[w], step);
      parts[w]->backward(xs, ys[w], dys, &dxs[w], step);
    });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < 3; ++w) {
    for (size_t i = 0; i < ys[w].num_elements(); ++i) {
      EXPECT_NEAR(ys[w].data()[i], y.data()[cuts[w] * sample + i], 1e-5) << "worker " << w;
      EXPECT_NEAR(dxs[w].data()[i], dx.data()[cuts[w] * sample + i], 1e-5) << "worker " << w;
    }
    // The running statistics follow the global batch on every worker.
    for (size_t c = 0; c < 2; ++c) {
      EXPECT_NEAR(bound[w].buffers[0].data()[c], whole_params.buffers[0].data()[c], 1e-6);
      EXPECT_NEAR(bound[w].buffers[1].data()[c], whole_params.buffers[1].data()[c], 1e-6);
    }
  }
  // Parameter gradients are each worker's local part; their sum is the whole batch's.
  for (size_t p = 0; p < 2; ++p) {
    for (size_t c = 0; c < 2; ++c) {
      const double total = bound[0].grads[p].data()[c] + bound[1].grads[p].data()[c] + bound[2].grads[p].data()[c];
      EXPECT_NEAR(total, whole_params.grads[p].data()[c], 1e-4);
    }
  }
}

TEST(BatchNorm2d, OptionsAreChecked) {
  auto error = [](const std::string& yaml) {
    return test_util::error_of<ConfigError>([&] { make_layer(yaml, {2, 2, 2}); });
  };
  EXPECT_NE(error("{type: batchnorm2d, momentum: 1.5}").find("momentum"), std::string::npos);
  EXPECT_NE(error("{type: batchnorm2d, eps: 0}").find("eps"), std::string::npos);
  EXPECT_NE(error("{type: batchnorm2d, stats: local}").find("per_worker"), std::string::npos);
}

// A CrossWorkerSum that declares device memory, as the NCCL communicator does; summing over one
// worker, it leaves the values as they are.
class DeviceMemorySum final : public CrossWorkerSum {
 public:
  SumMemory memory() const override { return SumMemory::Device; }
  void sum(double*, size_t count) override { calls.push_back(count); }
  std::vector<size_t> calls;
};

// Leaves host values as they are (one worker) and counts the calls.
class HostMemorySum final : public CrossWorkerSum {
 public:
  void sum(double*, size_t count) override { calls.push_back(count); }
  std::vector<size_t> calls;
};

TEST(BatchNorm2dStats, TheSummedVectorsHoldSumsThenSquaresThenTheCount) {
  const BatchStatsLayout layout{3};
  EXPECT_EQ(layout.values(Pass::Forward), 7u);
  EXPECT_EQ(layout.values(Pass::Backward), 6u);
  EXPECT_EQ(layout.first(0), 0u);
  EXPECT_EQ(layout.first(2), 2u);
  EXPECT_EQ(layout.second(0), 3u);
  EXPECT_EQ(layout.second(2), 5u);
  EXPECT_EQ(layout.count(), 6u);
  auto layer = make_layer("{type: batchnorm2d}", {5, 2, 2});
  EXPECT_EQ(static_cast<BatchNorm2dLayer&>(*layer).stats_layout().channels, 5u);
}

TEST(BatchNorm2dStats, ThePathFollowsTheStatsOptionAndWhereTheSumTakesItsValues) {
  auto global = make_layer("{type: batchnorm2d}", {2, 2, 2});
  auto per_worker = make_layer("{type: batchnorm2d, stats: per_worker}", {2, 2, 2});
  auto& g = static_cast<BatchNorm2dLayer&>(*global);
  auto& p = static_cast<BatchNorm2dLayer&>(*per_worker);
  HostMemorySum host;
  DeviceMemorySum device;
  StepInfo alone, on_host, on_device;
  on_host.batch_stats = &host;
  on_device.batch_stats = &device;
  EXPECT_EQ(g.stats_path(alone), StatsPath::Local);
  EXPECT_EQ(g.stats_path(on_host), StatsPath::HostSum);
  EXPECT_EQ(g.stats_path(on_device), StatsPath::DeviceSum);
  EXPECT_EQ(p.stats_path(on_host), StatsPath::Local);
  EXPECT_EQ(p.stats_path(on_device), StatsPath::Local);
}

TEST(BatchNorm2dStats, TheCpuLayerRefusesToSumDeviceMemory) {
  auto layer = make_layer("{type: batchnorm2d}", {2, 3, 3});
  auto bound = bind_fresh_parameters(*layer, 4);
  DeviceMemorySum device;
  StepInfo step;
  step.batch_stats = &device;
  const Tensor x = random_batch({2, 2, 3, 3}, 8);
  Tensor y(x.shape());
  EXPECT_THROW(layer->forward(x, y, step), UsageError);
  EXPECT_TRUE(device.calls.empty());
}

}  // namespace
}  // namespace dptrain
