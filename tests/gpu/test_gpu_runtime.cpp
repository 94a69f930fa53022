// Device memory, device choice, optimizer kernels and a whole model step: CUDA against the CPU.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "runtime/core/errors.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// These run on every machine: they check what happens without a GPU, or with one.
TEST(DeviceChoice, AutoIsCudaExactlyWhenAGpuIsVisible) {
  std::string why;
  const size_t gpus = visible_gpu_count(&why);
  EXPECT_EQ(resolve_device("auto"), gpus > 0 ? DeviceKind::CUDA : DeviceKind::CPU);
  EXPECT_EQ(resolve_device("cpu"), DeviceKind::CPU);
  EXPECT_EQ(resolve_device("cuda"), DeviceKind::CUDA);
  if (gpus == 0) EXPECT_FALSE(why.empty()) << "no GPU, but no reason given";
}

TEST(DeviceChoice, CudaWithoutAGpuIsAClearUsageError) {
  if (visible_gpu_count() > 0) GTEST_SKIP() << "a CUDA device is visible: the no-GPU error cannot be provoked";
  try {
    Context context(DeviceKind::CUDA, 1, 1, 0);
    FAIL() << "Context(cuda) succeeded without a GPU";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device is visible"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("device: auto or cpu"), std::string::npos) << e.what();
  }
}

// One visible GPU is each worker's own (Slurm --gpus-per-task=1); among several, more workers than
// GPUs is an error.
TEST(DeviceChoice, WorkersBeyondTheVisibleGpus) {
  const size_t gpus = visible_gpu_count();
  if (gpus == 0) GTEST_SKIP() << "no CUDA device visible: " << no_gpu_reason();
  if (gpus == 1) {
    Context context(DeviceKind::CUDA, 1, 4, 3);
    EXPECT_EQ(cuda_context(context.backend()).ordinal(), 0u);
    return;
  }
  try {
    Context context(DeviceKind::CUDA, 1, gpus + 1, 0);
    FAIL() << "Context(cuda) accepted " << gpus + 1 << " workers on " << gpus << " GPUs";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("workers on this node but only"), std::string::npos) << e.what();
  }
}

TEST(DeviceChoice, CudaCodeNeedsTheCudaBackend) {
  CpuBackend cpu;
  try {
    cuda_context(cpu);
    FAIL() << "the cpu backend gave a CUDA context";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("backend 'cpu' is not the CUDA backend"), std::string::npos) << e.what();
  }
}

class GpuRuntimeTest : public GpuTest {};

TEST_F(GpuRuntimeTest, PrecisionComesFromTheConfigAlone) {
  // The environment variable that once overrode it changes nothing now.
  setenv("DPTRAIN_TF32", "1", 1);
  Context float32(DeviceKind::CUDA, 1, 1, 0, Precision::Float32);
  unsetenv("DPTRAIN_TF32");
  EXPECT_EQ(float32.precision(), Precision::Float32);
  EXPECT_EQ(float32.describe_precision(), "float32");
  Context tf32(DeviceKind::CUDA, 1, 1, 0, Precision::Tf32);
  EXPECT_EQ(tf32.precision(), Precision::Tf32);
}

TEST_F(GpuRuntimeTest, TensorsRoundTripAndFill) {
  const Tensor host = random_host({3, 1000}, 9);
  Tensor device = host.to(gpu());
  EXPECT_EQ(device.device(), DeviceKind::CUDA);
  expect_close(device, host, 0, "round trip");
  device.fill(2.5f);
  const Tensor back = device.to_host();
  for (size_t i = 0; i < back.num_elements(); ++i) ASSERT_EQ(back.data()[i], 2.5f) << i;
  Tensor pinned = Tensor::pinned({7}, gpu());
  EXPECT_EQ(pinned.device(), DeviceKind::CPU);
  pinned.fill(1.0f);
  pinned.copy_from(Tensor({7}, gpu()));
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(pinned.data()[i], 0.0f);
}

// Three updates of the same optimizer config on the CPU and on the GPU.
void compare_optimizer(const std::string& yaml) {
  const size_t n = 4099;
  ConfigMap cpu_config = ConfigMap::parse(yaml), gpu_config = ConfigMap::parse(yaml);
  const std::vector<ParamEntry> layout = {{0, "0.dense.weight", "dense", "weight", {n}, 0}};
  auto cpu = make_optimizer(cpu_config, layout, n, GpuTest::cpu());
  auto gpu = make_optimizer(gpu_config, layout, n, GpuTest::gpu());
  Tensor p_cpu = random_host({n}, 11);
  Tensor p_gpu = p_cpu.to(GpuTest::gpu());
  for (uint64_t step = 0; step < 3; ++step) {
    const Tensor g = random_host({n}, 20 + step);
    cpu->step(p_cpu, g, 0.05f);
    gpu->step(p_gpu, g.to(GpuTest::gpu()), 0.05f);
  }
  expect_close(p_gpu, p_cpu, 1e-5, yaml + " params");
  auto cpu_state = cpu->state(), gpu_state = gpu->state();
  ASSERT_EQ(cpu_state.size(), gpu_state.size());
  for (size_t i = 0; i < cpu_state.size(); ++i) {
    expect_close(*gpu_state[i].second, *cpu_state[i].second, 1e-5, yaml + " " + cpu_state[i].first);
  }
  EXPECT_EQ(gpu->steps(), 3u);
}

TEST_F(GpuRuntimeTest, SgdKernelsMatchCpu) {
  compare_optimizer("{type: sgd, lr: 0.1}");
  compare_optimizer("{type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.01}");
  compare_optimizer("{type: sgd, lr: 0.1, momentum: 0.8, nesterov: true}");
}

TEST_F(GpuRuntimeTest, AdamKernelsMatchCpu) {
  compare_optimizer("{type: adam, lr: 0.01, weight_decay: 0.01}");
  compare_optimizer("{type: adam, lr: 0.01, weight_decay: 0.1, decoupled_weight_decay: true}");
}

TEST_F(GpuRuntimeTest, OptimizerRejectsBuffersOnAnotherDevice) {
  ConfigMap config = ConfigMap::parse("{type: sgd, lr: 0.1}");
  auto gpu = make_optimizer(config, {{0, "0.dense.weight", "dense", "weight", {8}, 0}}, 8, GpuTest::gpu());
  Tensor host({8});
  EXPECT_THROW(gpu->step(host, host, 0.1f), Error);
}

// A small CNN: one training step on each backend from the same seed and batch.
TEST_F(GpuRuntimeTest, ModelStepMatchesCpu) {
  const std::vector<std::string> layers = {
      "{type: conv2d, out_channels: 4, kernel: 3, padding: 1}", "{type: relu}", "{type: max_pool2d, kernel: 2}",
      "{type: conv2d, out_channels: 6, kernel: 3}", "{type: relu}", "{type: avg_pool2d, kernel: 2}",
      "{type: flatten}", "{type: dropout, rate: 0.25}", "{type: dense, units: 10}", "{type: softmax_cross_entropy}"};
  std::vector<ConfigMap> cpu_layers = layer_configs(layers), gpu_layers = layer_configs(layers);
  Model cpu(cpu_layers, {1, 12, 12}, GpuTest::cpu(), 3);
  Model gpu(gpu_layers, {1, 12, 12}, GpuTest::gpu(), 3);
  expect_close(gpu.parameters(), cpu.parameters(), 0, "initial parameters");

  const size_t n = 16;
  const Tensor x = random_host({n, 1, 12, 12}, 4);
  std::vector<int32_t> labels(n);
  std::vector<uint64_t> ids(n);
  for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>(s % 10), ids[s] = 50 + s;
  StepInfo info;
  info.seed = 1;
  info.sample_ids = ids.data();
  const LossStats a = cpu.step(x, labels.data(), info, 1.0f / n);
  std::vector<std::pair<size_t, size_t>> ready;
  const LossStats b = gpu.step(x, labels.data(), info, 1.0f / n, [&](size_t lo, size_t hi) { ready.emplace_back(lo, hi); });
  EXPECT_NEAR(b.loss_sum, a.loss_sum, 1e-4 * a.loss_sum);
  EXPECT_EQ(b.correct, a.correct);
  EXPECT_FALSE(ready.empty());
  expect_close(gpu.gradients(), cpu.gradients(), 1e-3, "gradients");
}

}  // namespace
}  // namespace dptrain::testing
