// Label smoothing, weight decay exclusions, frozen parameters and gradient clipping: CUDA against the CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/train/optimizer.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

class GpuLossOptimTest : public GpuTest {};

TEST_F(GpuLossOptimTest, LabelSmoothedLossMatchesCpu) {
  for (const char* yaml :
       {"{type: softmax_cross_entropy, label_smoothing: 0.1}", "{type: softmax_cross_entropy, label_smoothing: 0.6}"}) {
    ConfigMap options = ConfigMap::parse(yaml), options_gpu = ConfigMap::parse(yaml);
    auto cpu = LayerRegistry::builtin().create(options, {10}, GpuTest::cpu());
    auto gpu = LayerRegistry::builtin().create(options_gpu, {10}, GpuTest::gpu());
    const size_t n = 37;
    Tensor logits = random_host({n, 10}, 5);
    for (size_t i = 0; i < logits.num_elements(); ++i) logits.data()[i] *= 4.0f;
    std::vector<int32_t> labels(n);
    for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>((s * 3) % 10);
    const Tensor labels_gpu = device_labels(labels);

    Tensor d_cpu({n, 10});
    const LossStats expected = static_cast<LossLayer&>(*cpu).loss(logits, labels.data(), &d_cpu, 0.25f);
    Tensor d_gpu({n, 10}, GpuTest::gpu());
    const LossStats got = static_cast<LossLayer&>(*gpu).loss(
        logits.to(GpuTest::gpu()), reinterpret_cast<const int32_t*>(labels_gpu.data()), &d_gpu, 0.25f);
    EXPECT_NEAR(got.loss_sum, expected.loss_sum, 1e-5 * expected.loss_sum) << yaml;
    EXPECT_EQ(got.correct, expected.correct) << yaml;
    expect_close(d_gpu, d_cpu, 1e-5, std::string(yaml) + " dlogits");
  }
}

// conv2d -> batchnorm2d (frozen weight) -> dense, parameters padded to 1024 floats each.
std::vector<ParamEntry> layout() {
  auto entry = [](const char* type, const char* param, size_t size, size_t offset, ParamUse use) {
    return ParamEntry{0, std::string(type) + "." + param, type, param, {size}, offset, use};
  };
  return {entry("conv2d", "weight", 1000, 0, ParamUse::Trained),
          entry("conv2d", "bias", 10, 1024, ParamUse::Trained),
          entry("batchnorm2d", "weight", 10, 2048, ParamUse::Frozen),
          entry("batchnorm2d", "bias", 10, 3072, ParamUse::Trained),
          entry("dense", "weight", 900, 4096, ParamUse::Trained),
          entry("dense", "bias", 7, 5120, ParamUse::Trained)};
}
constexpr size_t kFlat = 6144;

// Three clipped updates of the same config on the CPU and on the GPU.
void compare(const std::string& yaml) {
  ConfigMap cpu_config = ConfigMap::parse(yaml), gpu_config = ConfigMap::parse(yaml);
  auto cpu = make_optimizer(cpu_config, layout(), kFlat, GpuTest::cpu());
  auto gpu = make_optimizer(gpu_config, layout(), kFlat, GpuTest::gpu());
  ASSERT_GT(cpu->ranges().size(), 1u) << yaml;
  Tensor p_cpu = random_host({kFlat}, 11);
  Tensor p_gpu = p_cpu.to(GpuTest::gpu());
  for (uint64_t step = 0; step < 3; ++step) {
    Tensor g = random_host({kFlat}, 20 + step);
    Tensor g_gpu = g.to(GpuTest::gpu());
    cpu->clip_grad_norm(g);
    gpu->clip_grad_norm(g_gpu);
    ASSERT_TRUE(cpu->last_grad_norm() && gpu->last_grad_norm()) << yaml;
    EXPECT_NEAR(*gpu->last_grad_norm(), *cpu->last_grad_norm(), 1e-5 * *cpu->last_grad_norm()) << yaml;
    EXPECT_GT(*cpu->last_grad_norm(), 1.0) << yaml << ": the test means to clip";
    expect_close(g_gpu, g, 1e-5, yaml + " clipped gradients");
    cpu->step(p_cpu, g, 0.05f);
    gpu->step(p_gpu, g_gpu, 0.05f);
  }
  expect_close(p_gpu, p_cpu, 1e-5, yaml + " params");
  const Tensor start = random_host({kFlat}, 11), after = p_gpu.to_host();
  EXPECT_EQ(std::memcmp(after.data() + 2048, start.data() + 2048, 1024 * sizeof(float)), 0) << yaml << " frozen";
  auto cpu_state = cpu->state(), gpu_state = gpu->state();
  ASSERT_EQ(cpu_state.size(), gpu_state.size());
  for (size_t i = 0; i < cpu_state.size(); ++i) {
    expect_close(*gpu_state[i].second, *cpu_state[i].second, 1e-5, yaml + " " + cpu_state[i].first);
  }
}

TEST_F(GpuLossOptimTest, ExclusionsFrozenRangesAndClippingMatchCpu) {
  compare(
      "{type: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.01, weight_decay_exclude: [bias, norm], "
      "clip_grad_norm: 1.0}");
  compare("{type: adam, lr: 0.01, weight_decay: 0.1, weight_decay_exclude: [bias], clip_grad_norm: 2.0}");
  compare(
      "{type: adam, lr: 0.01, weight_decay: 0.1, decoupled_weight_decay: true, weight_decay_exclude: norm, "
      "clip_grad_norm: 0.5}");
}

}  // namespace
}  // namespace dptrain::testing
