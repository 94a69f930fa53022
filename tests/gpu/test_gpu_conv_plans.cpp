// The CUDA conv2d layer's plans: kept per batch size (alternating batches reuse them and still match
// the CPU), and deterministic algorithms only under Determinism::Required (bit-identical gradients
// from two backward passes). Skipped without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

const char* const kConv = "{type: conv2d, out_channels: 16, kernel: 3, padding: 1}";
const Shape kInput{8, 12, 12};

// A conv2d layer on `backend` with parameters copied from `host_params`, and its buffers.
struct BoundConv {
  std::unique_ptr<Layer> layer;
  std::vector<Tensor> params, grads;

  BoundConv(Backend& backend, const std::vector<Tensor>& host_params) {
    ConfigMap options = ConfigMap::parse(kConv);
    layer = LayerRegistry::builtin().create(options, kInput, backend);
    for (const Tensor& p : host_params) {
      params.push_back(p.to(backend));
      grads.emplace_back(p.shape(), backend);
    }
    layer->bind(params, grads);
  }
};

// The CPU layer's parameters, randomly initialised, and the CPU layer bound to them.
struct CpuConv {
  std::unique_ptr<Layer> layer;
  std::vector<Tensor> params, grads;

  CpuConv() {
    ConfigMap options = ConfigMap::parse(kConv);
    layer = LayerRegistry::builtin().create(options, kInput, GpuTest::cpu());
    for (const auto& spec : layer->parameters()) {
      params.emplace_back(spec.shape);
      grads.emplace_back(spec.shape);
    }
    layer->bind(params, grads);
    Rng rng(hash_key(11, 3));
    layer->init_parameters(rng);
  }
};

class GpuConvPlanTest : public GpuTest {};

TEST_F(GpuConvPlanTest, AlternatingBatchSizesMatchTheCpuEachTime) {
  CpuConv cpu_conv;
  BoundConv gpu_conv(gpu(), cpu_conv.params);
  const StepInfo step{};
  for (size_t batch : {6, 2, 6, 2, 5}) {
    const std::string what = "batch " + std::to_string(batch);
    const Tensor x = random_host(batch_shape(batch, kInput), 20 + batch);
    Tensor y_cpu(batch_shape(batch, cpu_conv.layer->output_shape()));
    cpu_conv.layer->forward(x, y_cpu, step);
    const Tensor x_gpu = x.to(gpu());
    Tensor y_gpu(y_cpu.shape(), gpu());
    gpu_conv.layer->forward(x_gpu, y_gpu, step);
    expect_close(y_gpu, y_cpu, 1e-4, what + " y");

    const Tensor dy = random_host(y_cpu.shape(), 40 + batch);
    Tensor dx_cpu(x.shape()), dx_gpu(x.shape(), gpu());
    cpu_conv.layer->backward(x, y_cpu, dy, &dx_cpu, step);
    gpu_conv.layer->backward(x_gpu, y_gpu, dy.to(gpu()), &dx_gpu, step);
    expect_close(dx_gpu, dx_cpu, 1e-4, what + " dx");
    expect_close(gpu_conv.grads[0], cpu_conv.grads[0], 1e-4, what + " dw");
  }
}

TEST_F(GpuConvPlanTest, DeterministicAlgorithmsGiveBitIdenticalGradients) {
  Context deterministic(DeviceKind::CUDA, 1, 1, 0, Precision::Float32, Determinism::Required);
  EXPECT_EQ(cuda_context(deterministic.backend()).determinism(), Determinism::Required);
  EXPECT_NE(deterministic.describe_device().find("deterministic"), std::string::npos)
      << deterministic.describe_device();
  CpuConv cpu_conv;
  BoundConv gpu_conv(deterministic.backend(), cpu_conv.params);
  const StepInfo step{};
  const size_t batch = 32;
  const Tensor x = random_host(batch_shape(batch, kInput), 7);
  const Tensor x_gpu = x.to(deterministic.backend());
  Tensor y_gpu(batch_shape(batch, cpu_conv.layer->output_shape()), deterministic.backend());
  gpu_conv.layer->forward(x_gpu, y_gpu, step);
  const Tensor dy = random_host(y_gpu.shape(), 8).to(deterministic.backend());
  Tensor dx_gpu(x.shape(), deterministic.backend());

  std::vector<Tensor> dw, dx;
  for (int run = 0; run < 2; ++run) {
    gpu_conv.layer->backward(x_gpu, y_gpu, dy, &dx_gpu, step);
    dw.push_back(gpu_conv.grads[0].to_host());
    dx.push_back(dx_gpu.to_host());
  }
  EXPECT_EQ(std::memcmp(dw[0].data(), dw[1].data(), dw[0].num_elements() * sizeof(float)), 0) << "dw differs";
  EXPECT_EQ(std::memcmp(dx[0].data(), dx[1].data(), dx[0].num_elements() * sizeof(float)), 0) << "dx differs";

  Tensor y_cpu(batch_shape(batch, cpu_conv.layer->output_shape()));
  cpu_conv.layer->forward(x, y_cpu, step);
  Tensor dx_cpu(x.shape());
  cpu_conv.layer->backward(x, y_cpu, dy.to_host(), &dx_cpu, step);
  expect_close(gpu_conv.grads[0], cpu_conv.grads[0], 1e-4, "deterministic dw");
  expect_close(dx_gpu, dx_cpu, 1e-4, "deterministic dx");
}

}  // namespace
}  // namespace dptrain::testing
