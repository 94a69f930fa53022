// Every CUDA layer against the CPU layer of the same config: forward and backward on random
// inputs, with the same parameters, compared with a relative tolerance.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// One layer configuration to compare.
struct LayerCase {
  std::string name;  // test name suffix
  std::string yaml;  // the layer's config
  Shape input;       // per-sample input shape
  size_t batch;
  double tolerance;  // relative, float32 summation order (and cuDNN algorithms) differ
};

std::vector<LayerCase> layer_cases() {
  return {
      {"conv3x3", "{type: conv2d, out_channels: 8, kernel: 3, padding: 1}", {3, 12, 12}, 5, 1e-4},
      {"conv5x5_stride2_nobias", "{type: conv2d, out_channels: 6, kernel: 5, stride: 2, bias: false}", {4, 15, 13},
       3, 1e-4},
      {"conv1x1", "{type: conv2d, out_channels: 7, kernel: 1}", {5, 6, 6}, 4, 1e-4},
      {"dense", "{type: dense, units: 17}", {3, 5, 5}, 9, 1e-4},
      {"dense_nobias", "{type: dense, units: 4, bias: false}", {33}, 2, 1e-4},
      {"max_pool2x2", "{type: max_pool2d, kernel: 2}", {3, 8, 9}, 4, 1e-6},
      {"max_pool3_stride2_pad1", "{type: max_pool2d, kernel: 3, stride: 2, padding: 1}", {2, 9, 7}, 3, 1e-6},
      {"avg_pool2x2", "{type: avg_pool2d, kernel: 2}", {3, 8, 8}, 4, 1e-5},
      {"avg_pool3_stride2_pad1", "{type: avg_pool2d, kernel: 3, stride: 2, padding: 1}", {2, 9, 7}, 3, 1e-5},
      {"relu", "{type: relu}", {4, 5, 6}, 3, 0},
      {"flatten", "{type: flatten}", {2, 3, 4}, 5, 0},
      {"dropout", "{type: dropout, rate: 0.3}", {50}, 6, 1e-6},
  };
}

// Test names and failure messages show a case by its name.
void PrintTo(const LayerCase& c, std::ostream* out) { *out << c.name; }

class GpuLayerTest : public GpuTest, public ::testing::WithParamInterface<LayerCase> {};

std::unique_ptr<Layer> build(const LayerCase& c, Backend& backend) {
  ConfigMap options = ConfigMap::parse(c.yaml);
  return LayerRegistry::builtin().create(options, c.input, backend);
}

// Parameter and gradient buffers for `layer` in `backend`'s memory, bound to it; parameters from `params`.
struct Bound {
  std::vector<Tensor> params, grads;
};
Bound bind_buffers(Layer& layer, const std::vector<Tensor>& host_params, Backend& backend) {
  Bound b;
  for (const Tensor& p : host_params) {
    b.params.push_back(p.to(backend));
    b.grads.push_back(Tensor(p.shape(), backend));
  }
  layer.bind(b.params, b.grads);
  return b;
}

TEST_P(GpuLayerTest, MatchesCpuForwardAndBackward) {
  const LayerCase& c = GetParam();
  auto cpu = build(c, GpuTest::cpu());
  auto gpu = build(c, GpuTest::gpu());
  ASSERT_EQ(cpu->output_shape(), gpu->output_shape());

  std::vector<Tensor> host_params;
  for (const auto& spec : cpu->parameters()) host_params.push_back(Tensor(spec.shape));
  Bound cpu_bound = bind_buffers(*cpu, host_params, GpuTest::cpu());
  Rng rng(hash_key(42, 7));
  cpu->init_parameters(rng);
  for (size_t i = 0; i < host_params.size(); ++i) {
    // Random biases too, so that a dropped bias term would show.
    Tensor noise = random_host(host_params[i].shape(), 100 + i);
    for (size_t j = 0; j < noise.num_elements(); ++j) cpu_bound.params[i].data()[j] += 0.1f * noise.data()[j];
  }
  Bound gpu_bound = bind_buffers(*gpu, cpu_bound.params, GpuTest::gpu());

  std::vector<uint64_t> ids(c.batch);
  for (size_t s = 0; s < c.batch; ++s) ids[s] = 1000 + 7 * s;
  StepInfo step;
  step.seed = 5;
  step.epoch = 2;
  step.sample_ids = ids.data();

  const Tensor x = random_host(batch_shape(c.batch, c.input), 1);
  Tensor y_cpu(batch_shape(c.batch, cpu->output_shape()));
  cpu->forward(x, y_cpu, step);
  const Tensor x_gpu = x.to(GpuTest::gpu());
  Tensor y_gpu(y_cpu.shape(), GpuTest::gpu());
  gpu->forward(x_gpu, y_gpu, step);
  expect_close(y_gpu, y_cpu, c.tolerance, c.name + " forward y");

  const Tensor dy = random_host(y_cpu.shape(), 2);
  Tensor dx_cpu(x.shape());
  cpu->backward(x, y_cpu, dy, &dx_cpu, step);
  Tensor dx_gpu(x.shape(), GpuTest::gpu());
  gpu->backward(x_gpu, y_gpu, dy.to(GpuTest::gpu()), &dx_gpu, step);
  expect_close(dx_gpu, dx_cpu, c.tolerance, c.name + " backward dx");
  for (size_t i = 0; i < cpu_bound.grads.size(); ++i) {
    expect_close(gpu_bound.grads[i], cpu_bound.grads[i], c.tolerance, c.name + " gradient " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(AllLayers, GpuLayerTest, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& info) { return info.param.name; });

class GpuLossTest : public GpuTest {};

TEST_F(GpuLossTest, SoftmaxCrossEntropyMatchesCpu) {
  ConfigMap options = ConfigMap::parse("{type: softmax_cross_entropy}");
  ConfigMap options_gpu = ConfigMap::parse("{type: softmax_cross_entropy}");
  auto cpu = LayerRegistry::builtin().create(options, {10}, GpuTest::cpu());
  auto gpu = LayerRegistry::builtin().create(options_gpu, {10}, GpuTest::gpu());
  const size_t n = 37;
  Tensor logits = random_host({n, 10}, 3);
  for (size_t i = 0; i < logits.num_elements(); ++i) logits.data()[i] *= 4.0f;
  std::vector<int32_t> labels(n);
  for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>((s * 7) % 10);
  const Tensor labels_gpu = device_labels(labels);

  Tensor d_cpu({n, 10});
  const LossStats expected = static_cast<LossLayer&>(*cpu).loss(logits, labels.data(), &d_cpu, 0.25f);
  Tensor d_gpu({n, 10}, GpuTest::gpu());
  const LossStats got = static_cast<LossLayer&>(*gpu).loss(
      logits.to(GpuTest::gpu()), reinterpret_cast<const int32_t*>(labels_gpu.data()), &d_gpu, 0.25f);
  EXPECT_NEAR(got.loss_sum, expected.loss_sum, 1e-5 * expected.loss_sum);
  EXPECT_EQ(got.correct, expected.correct);
  EXPECT_EQ(got.count, n);
  expect_close(d_gpu, d_cpu, 1e-5, "dlogits");
}

TEST_F(GpuLossTest, LabelOutsideTheClassesIsAnError) {
  ConfigMap options = ConfigMap::parse("{type: softmax_cross_entropy}");
  auto gpu = LayerRegistry::builtin().create(options, {4}, GpuTest::gpu());
  const Tensor labels = device_labels({1, 4});
  Tensor logits({2, 4}, GpuTest::gpu());
  EXPECT_THROW(static_cast<LossLayer&>(*gpu).loss(logits, reinterpret_cast<const int32_t*>(labels.data()), nullptr, 1),
               Error);
}

}  // namespace
}  // namespace dptrain::testing
