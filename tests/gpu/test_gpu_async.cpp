// What the GPU keeps on the device between host reads: the loss layer's running sums and the
// gradient-clipping norm, against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

class GpuAsyncTest : public GpuTest {};

TEST_F(GpuAsyncTest, RunningLossSumsMatchTheCpuOverSeveralBatchesAndStartAgainAfterATake) {
  ConfigMap options = ConfigMap::parse("{type: softmax_cross_entropy}");
  ConfigMap options_gpu = ConfigMap::parse("{type: softmax_cross_entropy}");
  auto cpu = LayerRegistry::builtin().create(options, {10}, GpuTest::cpu());
  auto gpu = LayerRegistry::builtin().create(options_gpu, {10}, GpuTest::gpu());
  auto& cpu_loss = static_cast<LossLayer&>(*cpu);
  auto& gpu_loss = static_cast<LossLayer&>(*gpu);
  LossStats expected;
  for (size_t batch = 0; batch < 3; ++batch) {
    const size_t n = 300 + 37 * batch;  // more samples than one block's threads
    Tensor logits = random_host({n, 10}, 11 + batch);
    std::vector<int32_t> labels(n);
    for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>((s * 7 + batch) % 10);
    const Tensor labels_gpu = device_labels(labels);
    Tensor d_cpu({n, 10}), d_gpu({n, 10}, GpuTest::gpu());
    expected += cpu_loss.loss(logits, labels.data(), &d_cpu, 0.5f);
    gpu_loss.accumulate(logits.to(GpuTest::gpu()), reinterpret_cast<const int32_t*>(labels_gpu.data()), &d_gpu, 0.5f);
    expect_close(d_gpu, d_cpu, 1e-5, "dlogits");
  }
  const LossStats got = gpu_loss.take_sums();
  EXPECT_NEAR(got.loss_sum, expected.loss_sum, 1e-5 * expected.loss_sum);
  EXPECT_EQ(got.correct, expected.correct);
  EXPECT_EQ(got.count, expected.count);
  const LossStats again = gpu_loss.take_sums();
  EXPECT_EQ(again.count, 0u) << "a take zeroes the running sums";
  EXPECT_EQ(again.loss_sum, 0.0);
}

TEST_F(GpuAsyncTest, ABadLabelInTheRunningSumsIsReportedWhenTheyAreTaken) {
  ConfigMap options = ConfigMap::parse("{type: softmax_cross_entropy}");
  auto gpu = LayerRegistry::builtin().create(options, {4}, GpuTest::gpu());
  auto& loss = static_cast<LossLayer&>(*gpu);
  const Tensor labels = device_labels({1, 2, 9});
  Tensor logits({3, 4}, GpuTest::gpu());
  loss.accumulate(logits, reinterpret_cast<const int32_t*>(labels.data()), nullptr, 1);
  try {
    loss.take_sums();
    ADD_FAILURE() << "a label outside the classes must be reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch entry 2"), std::string::npos) << e.what();
  }
}

TEST_F(GpuAsyncTest, ClippingOnTheDeviceMatchesTheCpu) {
  const size_t n = 5000;
  Tensor host = random_host({n}, 5);
  for (size_t i = 0; i < n; ++i) host.data()[i] *= 3.0f;
  const std::vector<ElementSpan> spans = {{0, 1200}, {1200, 1200}, {2000, n}};
  for (const double max_norm : {1.0, 1e6}) {
    Tensor cpu_x = host.to_host(), gpu_x = host.to(GpuTest::gpu());
    double cpu_norm = 0;
    GpuTest::cpu().clip_to_norm(cpu_x.data(), spans, max_norm, &cpu_norm);
    auto* device_norm = static_cast<double*>(GpuTest::gpu().allocate(sizeof(double)));
    GpuTest::gpu().clip_to_norm(gpu_x.data(), spans, max_norm, device_norm);
    double gpu_norm = 0;
    GpuTest::gpu().copy_to_host(&gpu_norm, device_norm, sizeof(double));
    GpuTest::gpu().release(device_norm);
    EXPECT_NEAR(gpu_norm, cpu_norm, 1e-9 * cpu_norm) << max_norm;
    expect_close(gpu_x, cpu_x, 1e-6, max_norm > 1 ? "not clipped" : "clipped");
  }
}

}  // namespace
}  // namespace dptrain::testing
