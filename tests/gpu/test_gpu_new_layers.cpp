// The CUDA activations, global average pooling and grouped / dilated convolutions against the CPU
// layer of the same config: forward and backward on random inputs with the same parameters.
#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// One layer configuration to compare.
struct NewLayerCase {
  std::string name;  // test name suffix
  std::string yaml;  // the layer's config
  Shape input;       // per-sample input shape
  size_t batch;
  double tolerance;  // relative: float32 summation order, cuDNN algorithms and exp() differ
};

std::vector<NewLayerCase> new_layer_cases() {
  return {
      {"leaky_relu", "{type: leaky_relu}", {4, 5, 6}, 3, 1e-6},
      {"leaky_relu_slope", "{type: leaky_relu, negative_slope: 0.2}", {70000}, 2, 1e-6},
      {"sigmoid", "{type: sigmoid}", {4, 5, 6}, 3, 1e-5},
      {"tanh", "{type: tanh}", {4, 5, 6}, 3, 1e-5},
      {"silu", "{type: silu}", {4, 5, 6}, 3, 1e-5},
      {"global_avg_pool", "{type: global_avg_pool2d}", {16, 7, 7}, 4, 1e-5},
      {"global_avg_pool_odd", "{type: global_avg_pool2d}", {3, 5, 9}, 2, 1e-5},
      {"conv_groups2", "{type: conv2d, out_channels: 8, kernel: 3, padding: 1, groups: 2}", {6, 10, 10}, 3, 1e-4},
      {"conv_depthwise", "{type: conv2d, out_channels: 6, kernel: 3, padding: 1, groups: 6}", {6, 9, 9}, 3, 1e-4},
      {"conv_depthwise_stride2",
       "{type: conv2d, out_channels: 12, kernel: 3, stride: 2, groups: 4, bias: false}",
       {4, 11, 10},
       2,
       1e-4},
      {"conv_dilation2", "{type: conv2d, out_channels: 5, kernel: 3, padding: 2, dilation: 2}", {3, 12, 11}, 3, 1e-4},
      {"conv_dilated_grouped",
       "{type: conv2d, out_channels: 4, kernel: 2, dilation: 3, groups: 2}",
       {4, 9, 9},
       2,
       1e-4},
  };
}

// Test names and failure messages show a case by its name.
void PrintTo(const NewLayerCase& c, std::ostream* out) { *out << c.name; }

class GpuNewLayerTest : public GpuTest, public ::testing::WithParamInterface<NewLayerCase> {};

std::unique_ptr<Layer> build(const NewLayerCase& c, Backend& backend) {
  ConfigMap options = ConfigMap::parse(c.yaml);
  return LayerRegistry::builtin().create(options, c.input, backend);
}

TEST_P(GpuNewLayerTest, MatchesCpuForwardAndBackward) {
  const NewLayerCase& c = GetParam();
  auto cpu = build(c, GpuTest::cpu());
  auto gpu = build(c, GpuTest::gpu());
  ASSERT_EQ(cpu->output_shape(), gpu->output_shape());

  // Parameters drawn on the host (pytorch init: random biases too), copied to the device.
  std::vector<Tensor> cpu_params, cpu_grads, gpu_params, gpu_grads;
  for (const auto& spec : cpu->parameters()) {
    cpu_params.emplace_back(spec.shape);
    cpu_grads.emplace_back(spec.shape);
  }
  cpu->bind(cpu_params, cpu_grads);
  Rng rng(hash_key(42, 8));
  cpu->init_parameters(rng);
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    gpu_params.push_back(cpu_params[i].to(GpuTest::gpu()));
    gpu_grads.emplace_back(cpu_params[i].shape(), GpuTest::gpu());
  }
  gpu->bind(gpu_params, gpu_grads);

  const StepInfo step;
  const Tensor x = random_host(batch_shape(c.batch, c.input), 11);
  Tensor y_cpu(batch_shape(c.batch, cpu->output_shape()));
  cpu->forward(x, y_cpu, step);
  const Tensor x_gpu = x.to(GpuTest::gpu());
  Tensor y_gpu(y_cpu.shape(), GpuTest::gpu());
  gpu->forward(x_gpu, y_gpu, step);
  expect_close(y_gpu, y_cpu, c.tolerance, c.name + " forward y");

  const Tensor dy = random_host(y_cpu.shape(), 12);
  Tensor dx_cpu(x.shape());
  cpu->backward(x, y_cpu, dy, &dx_cpu, step);
  Tensor dx_gpu(x.shape(), GpuTest::gpu());
  gpu->backward(x_gpu, y_gpu, dy.to(GpuTest::gpu()), &dx_gpu, step);
  expect_close(dx_gpu, dx_cpu, c.tolerance, c.name + " backward dx");
  for (size_t i = 0; i < cpu_grads.size(); ++i) {
    expect_close(gpu_grads[i], cpu_grads[i], c.tolerance, c.name + " gradient " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(NewLayers, GpuNewLayerTest, ::testing::ValuesIn(new_layer_cases()),
                         [](const ::testing::TestParamInfo<NewLayerCase>& info) { return info.param.name; });

}  // namespace
}  // namespace dptrain::testing
