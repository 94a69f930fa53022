// The layers of model graphs on the CUDA backend against the CPU layer of the same config:
// batchnorm2d (training and evaluation, running statistics, statistics summed over workers) and
// the merge layers add and concat, forward and backward on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Stands in for a second worker holding the same samples: every sum doubles, so the global batch
// is this batch twice. Records the length of each call.
class MirroredWorkerSum final : public CrossWorkerSum {
 public:
  void sum(double* values, size_t count) override {
    for (size_t i = 0; i < count; ++i) values[i] *= 2;
    calls.push_back(count);
  }
  std::vector<size_t> calls;
};

// Host values for a batchnorm2d layer's parameters (weight near 1, bias near 0) and buffers (running
// mean near 0, running variance in [0.5, 2.5]), all random so that a dropped term shows.
struct BatchNormState {
  std::vector<Tensor> params, buffers;
};

BatchNormState random_state(const Layer& layer, uint64_t key) {
  BatchNormState state;
  for (const ParamSpec& spec : layer.parameters()) {
    Tensor t = random_host(spec.shape, key++);
    const bool weight = spec.name == "weight";
    for (size_t i = 0; i < t.num_elements(); ++i) t.data()[i] = (weight ? 1.0f : 0.0f) + 0.3f * t.data()[i];
    state.params.push_back(t);
  }
  for (const ParamSpec& spec : layer.buffers()) {
    Tensor t = random_host(spec.shape, key++);
    const bool var = spec.name == "running_var";
    for (size_t i = 0; i < t.num_elements(); ++i) {
      t.data()[i] = var ? 0.5f + std::min(2.0f, std::fabs(t.data()[i])) : 0.1f * t.data()[i];
    }
    state.buffers.push_back(t);
  }
  return state;
}

// A layer on one backend, bound to its own copies of a state, with gradients preset to a value no
// layer writes (so a gradient left unwritten shows).
struct BoundLayer {
  BoundLayer(const std::string& yaml, const Shape& input, Backend& backend, const BatchNormState& state) {
    ConfigMap options = ConfigMap::parse(yaml);
    layer = LayerRegistry::builtin().create(options, input, backend);
    for (const Tensor& p : state.params) {
      params.push_back(p.to(backend));
      grads.emplace_back(p.shape(), backend);
      grads.back().fill(1234.5f);
    }
    for (const Tensor& b : state.buffers) buffers.push_back(b.to(backend));
    layer->bind(params, grads);
    layer->bind_buffers(buffers);
  }

  std::unique_ptr<Layer> layer;
  std::vector<Tensor> params, grads, buffers;
};

// Tolerances, relative (see expect_close): summation order and fused multiply-adds differ.
constexpr double kForwardTol = 1e-5, kBackwardTol = 1e-4;

// One batchnorm2d configuration to compare.
struct BatchNormCase {
  std::string name;  // test name suffix
  std::string yaml;  // the layer's config
  Shape input;       // per-sample input shape
  size_t batch;
};

std::vector<BatchNormCase> batchnorm_cases() {
  return {
      {"conv_input", "{type: batchnorm2d}", {6, 5, 7}, 4},
      {"dense_input", "{type: batchnorm2d}", {13}, 9},
      // 12,800 values per channel: the reduction splits each channel over several blocks.
      {"many_values_per_channel", "{type: batchnorm2d, momentum: 0.3, eps: 0.001}", {3, 40, 40}, 8},
      {"many_channels", "{type: batchnorm2d}", {300, 2, 3}, 2},
      {"no_affine", "{type: batchnorm2d, affine: false}", {5, 4, 4}, 3},
      // One value per channel: the variance is 0 and the unbiased one is taken as 0 too.
      {"one_value_per_channel", "{type: batchnorm2d, momentum: 0.5}", {4}, 1},
  };
}

// Test names and failure messages show a case by its name.
void PrintTo(const BatchNormCase& c, std::ostream* out) { *out << c.name; }

class GpuBatchNormTest : public GpuTest, public ::testing::WithParamInterface<BatchNormCase> {
 protected:
  // The CPU and CUDA layers of the case, from the same random state.
  void build(const std::string& yaml) {
    const BatchNormCase& c = GetParam();
    ConfigMap options = ConfigMap::parse(yaml);
    const BatchNormState state = random_state(*LayerRegistry::builtin().create(options, c.input, cpu()), 40);
    cpu_ = std::make_unique<BoundLayer>(yaml, c.input, cpu(), state);
    gpu_ = std::make_unique<BoundLayer>(yaml, c.input, gpu(), state);
    ASSERT_EQ(cpu_->layer->output_shape(), gpu_->layer->output_shape());
  }

  // One training step (forward, then backward into dx) on both layers with the same inputs, each
  // with its own `sums` (null: one worker); compares y, running statistics, dx and the gradients.
  void compare_training_step(uint64_t key, CrossWorkerSum* cpu_sums, CrossWorkerSum* gpu_sums) {
    const BatchNormCase& c = GetParam();
    const std::string what = c.name + " step " + std::to_string(key);
    const Tensor x = shifted_input(batch_shape(c.batch, c.input), key);
    StepInfo cpu_step, gpu_step;
    cpu_step.batch_stats = cpu_sums;
    gpu_step.batch_stats = gpu_sums;

    Tensor y_cpu(x.shape());
    cpu_->layer->forward(x, y_cpu, cpu_step);
    const Tensor x_gpu = x.to(gpu());
    Tensor y_gpu(x.shape(), gpu());
    gpu_->layer->forward(x_gpu, y_gpu, gpu_step);
    expect_close(y_gpu, y_cpu, kForwardTol, what + " y");
    expect_close(gpu_->buffers[0], cpu_->buffers[0], kForwardTol, what + " running_mean");
    expect_close(gpu_->buffers[1], cpu_->buffers[1], kForwardTol, what + " running_var");

    const Tensor dy = random_host(x.shape(), key + 1);
    Tensor dx_cpu(x.shape());
    cpu_->layer->backward(x, y_cpu, dy, &dx_cpu, cpu_step);
    Tensor dx_gpu(x.shape(), gpu());
    gpu_->layer->backward(x_gpu, y_gpu, dy.to(gpu()), &dx_gpu, gpu_step);
    expect_close(dx_gpu, dx_cpu, kBackwardTol, what + " dx");
    compare_gradients(what);
  }

  void compare_gradients(const std::string& what) {
    ASSERT_EQ(gpu_->grads.size(), cpu_->grads.size());
    for (size_t i = 0; i < cpu_->grads.size(); ++i) {
      expect_close(gpu_->grads[i], cpu_->grads[i], kBackwardTol, what + " gradient " + std::to_string(i));
    }
  }

  // Evaluation on both layers with the same input; compares y, and that the running statistics
  // are what they were.
  void compare_evaluation(uint64_t key) {
    const BatchNormCase& c = GetParam();
    const std::string what = c.name + " eval " + std::to_string(key);
    const Tensor running_mean = cpu_->buffers[0].to_host(), running_var = cpu_->buffers[1].to_host();
    const Tensor x = shifted_input(batch_shape(c.batch, c.input), key);
    StepInfo step;
    step.mode = Mode::Eval;
    Tensor y_cpu(x.shape());
    cpu_->layer->forward(x, y_cpu, step);
    Tensor y_gpu(x.shape(), gpu());
    gpu_->layer->forward(x.to(gpu()), y_gpu, step);
    expect_close(y_gpu, y_cpu, kForwardTol, what + " y");
    expect_close(gpu_->buffers[0], running_mean, 0, what + " running_mean unchanged");
    expect_close(gpu_->buffers[1], running_var, 0, what + " running_var unchanged");
  }

  std::unique_ptr<BoundLayer> cpu_, gpu_;
};

TEST_P(GpuBatchNormTest, TrainingStepMatchesCpu) {
  build(GetParam().yaml);
  compare_training_step(1, nullptr, nullptr);
}

TEST_P(GpuBatchNormTest, EvaluationUsesTheRunningStatistics) {
  build(GetParam().yaml);
  compare_evaluation(3);
}

TEST_P(GpuBatchNormTest, RunningStatisticsAfterTwoStepsThenEvaluation) {
  build(GetParam().yaml);
  compare_training_step(5, nullptr, nullptr);
  compare_training_step(7, nullptr, nullptr);
  compare_evaluation(9);
  // A training step after evaluation still normalises with its own batch's statistics.
  compare_training_step(11, nullptr, nullptr);
}

TEST_P(GpuBatchNormTest, StatisticsOfTheGlobalBatchMatchCpu) {
  build(GetParam().yaml);
  MirroredWorkerSum cpu_sums, gpu_sums;
  compare_training_step(13, &cpu_sums, &gpu_sums);
  const size_t channels = GetParam().input[0];
  EXPECT_EQ(gpu_sums.calls, (std::vector<size_t>{2 * channels + 1, 2 * channels}));
  EXPECT_EQ(gpu_sums.calls, cpu_sums.calls);
}

TEST_P(GpuBatchNormTest, BackwardWithoutDxWritesTheLocalGradientsAndJoinsTheSum) {
  build(GetParam().yaml);
  const BatchNormCase& c = GetParam();
  MirroredWorkerSum cpu_sums, gpu_sums;
  StepInfo cpu_step, gpu_step;
  cpu_step.batch_stats = &cpu_sums;
  gpu_step.batch_stats = &gpu_sums;
  const Tensor x = shifted_input(batch_shape(c.batch, c.input), 15);
  Tensor y_cpu(x.shape());
  cpu_->layer->forward(x, y_cpu, cpu_step);
  const Tensor x_gpu = x.to(gpu());
  Tensor y_gpu(x.shape(), gpu());
  gpu_->layer->forward(x_gpu, y_gpu, gpu_step);
  const Tensor dy = random_host(x.shape(), 16);
  cpu_->layer->backward(x, y_cpu, dy, nullptr, cpu_step);
  gpu_->layer->backward(x_gpu, y_gpu, dy.to(gpu()), nullptr, gpu_step);
  compare_gradients(c.name + " without dx");
  EXPECT_EQ(gpu_sums.calls, cpu_sums.calls);
  EXPECT_EQ(gpu_sums.calls.size(), 2u);
}

TEST_P(GpuBatchNormTest, PerWorkerStatisticsSumNothing) {
  const BatchNormCase& c = GetParam();
  std::string yaml = c.yaml;
  yaml.insert(yaml.size() - 1, ", stats: per_worker");
  build(yaml);
  MirroredWorkerSum cpu_sums, gpu_sums;
  compare_training_step(17, &cpu_sums, &gpu_sums);
  EXPECT_TRUE(gpu_sums.calls.empty());
  EXPECT_TRUE(cpu_sums.calls.empty());
}

INSTANTIATE_TEST_SUITE_P(BatchNorm2d, GpuBatchNormTest, ::testing::ValuesIn(batchnorm_cases()),
                         [](const ::testing::TestParamInfo<BatchNormCase>& info) { return info.param.name; });

// One merge layer configuration to compare.
struct MergeCase {
  std::string name;           // test name suffix
  std::string yaml;           // the layer's config
  std::vector<Shape> inputs;  // per-sample input shapes
  size_t batch;
  std::vector<bool> wants_dx;  // which inputs get a dx (the others pass null)
};

std::vector<MergeCase> merge_cases() {
  return {
      {"add_two", "{type: add}", {{4, 5, 6}, {4, 5, 6}}, 3, {true, true}},
      {"add_three_one_without_dx", "{type: add}", {{7}, {7}, {7}}, 5, {false, true, true}},
      {"concat_channels", "{type: concat}", {{2, 4, 5}, {3, 4, 5}, {1, 4, 5}}, 3, {true, true, true}},
      {"concat_dense", "{type: concat}", {{5}, {7}}, 4, {true, false}},
  };
}

// Test names and failure messages show a case by its name.
void PrintTo(const MergeCase& c, std::ostream* out) { *out << c.name; }

// What one forward and backward of a merge layer produced, in its backend's memory; a dx not asked
// for is empty.
struct MergeResult {
  Shape output;
  Tensor y;
  std::vector<Tensor> dxs;
};

MergeResult run_merge(const MergeCase& c, Backend& backend) {
  ConfigMap options = ConfigMap::parse(c.yaml);
  auto layer = LayerRegistry::builtin().create_from_inputs(options, c.inputs, backend);
  std::vector<Tensor> xs;
  std::vector<const Tensor*> x_ptrs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    xs.push_back(random_host(batch_shape(c.batch, c.inputs[i]), 50 + i).to(backend));
  }
  for (const Tensor& x : xs) x_ptrs.push_back(&x);
  MergeResult result;
  result.output = layer->output_shape();
  result.y = Tensor(batch_shape(c.batch, layer->output_shape()), backend);
  const StepInfo step;
  layer->forward_inputs(x_ptrs, result.y, step);

  const Tensor dy = random_host(result.y.shape(), 60).to(backend);
  std::vector<Tensor*> dx_ptrs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    result.dxs.push_back(c.wants_dx[i] ? Tensor(xs[i].shape(), backend) : Tensor());
    if (c.wants_dx[i]) result.dxs.back().fill(1234.5f);
  }
  for (Tensor& dx : result.dxs) dx_ptrs.push_back(dx.empty() ? nullptr : &dx);
  layer->backward_inputs(x_ptrs, result.y, dy, dx_ptrs, step);
  return result;
}

class GpuMergeLayerTest : public GpuTest, public ::testing::WithParamInterface<MergeCase> {};

TEST_P(GpuMergeLayerTest, MatchesCpuForwardAndBackward) {
  const MergeCase& c = GetParam();
  const MergeResult expected = run_merge(c, cpu());
  const MergeResult got = run_merge(c, gpu());
  ASSERT_EQ(got.output, expected.output);
  // Copies and in-order float sums: the same bits.
  expect_close(got.y, expected.y, 0, c.name + " y");
  ASSERT_EQ(got.dxs.size(), expected.dxs.size());
  for (size_t i = 0; i < expected.dxs.size(); ++i) {
    ASSERT_EQ(got.dxs[i].empty(), expected.dxs[i].empty()) << c.name << " dx " << i;
    if (!expected.dxs[i].empty()) expect_close(got.dxs[i], expected.dxs[i], 0, c.name + " dx " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(MergeLayers, GpuMergeLayerTest, ::testing::ValuesIn(merge_cases()),
                         [](const ::testing::TestParamInfo<MergeCase>& info) { return info.param.name; });

}  // namespace
}  // namespace dptrain::testing
