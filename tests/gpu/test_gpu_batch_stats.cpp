// Batch-norm statistics summed over workers in device memory (the NCCL path): the CUDA batchnorm2d
// with a CrossWorkerSum of device memory against the CPU layer with the same sum in host memory,
// a worker without samples joining the device sums, and the NCCL communicator's own sum of doubles
// on one rank (where a sum over one worker leaves the values, and the layer's result equals its
// result alone). Skipped without a GPU.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/nccl/nccl_communicator.h"
#include "layers/batchnorm2d.h"
#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/core/cuda/cuda_check.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// A second worker whose values are `other` (its first `count` for each call), added in host memory.
class OtherWorkerSum final : public CrossWorkerSum {
 public:
  explicit OtherWorkerSum(std::vector<double> other) : other_(std::move(other)) {}
  void sum(double* values, size_t count) override {
    for (size_t i = 0; i < count; ++i) values[i] += other_.at(i);
    calls.push_back(count);
  }
  std::vector<size_t> calls;

 private:
  std::vector<double> other_;
};

// A second worker holding the same samples: every value doubles.
class MirrorSum final : public CrossWorkerSum {
 public:
  void sum(double* values, size_t count) override {
    for (size_t i = 0; i < count; ++i) values[i] *= 2;
    calls.push_back(count);
  }
  std::vector<size_t> calls;
};

// Sums device memory as `inner` sums host memory, through a host copy queued on the compute stream:
// a stand-in for NCCL that keeps the stream's order (the host waits here; NCCL does not).
class DeviceSumThroughHost final : public CrossWorkerSum {
 public:
  DeviceSumThroughHost(CrossWorkerSum& inner, cudaStream_t stream) : inner_(inner), stream_(stream) {}
  SumMemory memory() const override { return SumMemory::Device; }
  void sum(double* values, size_t count) override {
    std::vector<double> host(count);
    DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(host.data(), values, count * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    inner_.sum(host.data(), count);
    DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(values, host.data(), count * sizeof(double), cudaMemcpyHostToDevice, stream_));
    DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  CrossWorkerSum& inner_;
  cudaStream_t stream_;
};

// A batchnorm2d layer on one backend with random parameters and running statistics from `key`
// (the same on every backend), gradients preset to a value no layer writes.
struct BoundBatchNorm {
  BoundBatchNorm(const std::string& yaml, const Shape& input, Backend& backend, uint64_t key) {
    ConfigMap options = ConfigMap::parse(yaml);
    layer = LayerRegistry::builtin().create(options, input, backend);
    for (const ParamSpec& spec : layer->parameters()) {
      Tensor p = random_host(spec.shape, key++);
      for (size_t i = 0; i < p.num_elements(); ++i) p.data()[i] = (spec.name == "weight" ? 1 : 0) + 0.3f * p.data()[i];
      params.push_back(p.to(backend));
      grads.emplace_back(spec.shape, backend);
      grads.back().fill(1234.5f);
    }
    for (const ParamSpec& spec : layer->buffers()) {
      Tensor b(spec.shape);
      for (size_t i = 0; i < b.num_elements(); ++i) b.data()[i] = spec.name == "running_var" ? 1.5f : 0.25f;
      buffers.push_back(b.to(backend));
    }
    layer->bind(params, grads);
    layer->bind_buffers(buffers);
  }
  std::unique_ptr<Layer> layer;
  std::vector<Tensor> params, grads, buffers;
};

constexpr double kForwardTol = 1e-5, kBackwardTol = 1e-4;

class GpuBatchStatsTest : public GpuTest {
 protected:
  cudaStream_t stream() { return cuda_context(gpu()).stream(); }

  // One training step on a CPU and a CUDA layer of `yaml` with the same inputs, the CPU layer's
  // statistics summed by `cpu_sums` and the CUDA layer's by `gpu_sums`; compares everything.
  void compare_step(const std::string& yaml, const Shape& input, size_t batch, CrossWorkerSum* cpu_sums,
                    CrossWorkerSum* gpu_sums, uint64_t key) {
    BoundBatchNorm c(yaml, input, cpu(), 40), g(yaml, input, gpu(), 40);
    const Tensor x = shifted_input(batch_shape(batch, input), key);
    StepInfo cpu_step, gpu_step;
    cpu_step.batch_stats = cpu_sums;
    gpu_step.batch_stats = gpu_sums;
    Tensor y_cpu(x.shape()), y_gpu(x.shape(), gpu());
    const Tensor x_gpu = x.to(gpu());
    c.layer->forward(x, y_cpu, cpu_step);
    g.layer->forward(x_gpu, y_gpu, gpu_step);
    expect_close(y_gpu, y_cpu, kForwardTol, yaml + " y");
    expect_close(g.buffers[0], c.buffers[0], kForwardTol, yaml + " running_mean");
    expect_close(g.buffers[1], c.buffers[1], kForwardTol, yaml + " running_var");
    const Tensor dy = random_host(x.shape(), key + 1);
    Tensor dx_cpu(x.shape()), dx_gpu(x.shape(), gpu());
    c.layer->backward(x, y_cpu, dy, &dx_cpu, cpu_step);
    g.layer->backward(x_gpu, y_gpu, dy.to(gpu()), &dx_gpu, gpu_step);
    expect_close(dx_gpu, dx_cpu, kBackwardTol, yaml + " dx");
    for (size_t i = 0; i < c.grads.size(); ++i) {
      expect_close(g.grads[i], c.grads[i], kBackwardTol, yaml + " gradient " + std::to_string(i));
    }
  }
};

TEST_F(GpuBatchStatsTest, SumsInDeviceMemoryMatchTheCpuSummingOnTheHost) {
  const struct {
    std::string yaml;
    Shape input;
    size_t batch;
  } cases[] = {{"{type: batchnorm2d}", {6, 5, 7}, 4},
               {"{type: batchnorm2d, affine: false}", {13}, 9},
               {"{type: batchnorm2d, momentum: 0.3}", {3, 40, 40}, 8}};
  for (const auto& k : cases) {
    MirrorSum cpu_sums, gpu_inner;
    DeviceSumThroughHost gpu_sums(gpu_inner, stream());
    compare_step(k.yaml, k.input, k.batch, &cpu_sums, &gpu_sums, 3);
    const size_t channels = k.input[0];
    EXPECT_EQ(gpu_inner.calls, (std::vector<size_t>{2 * channels + 1, 2 * channels})) << k.yaml;
    EXPECT_EQ(gpu_inner.calls, cpu_sums.calls) << k.yaml;
  }
}

TEST_F(GpuBatchStatsTest, AWorkerWithoutSamplesJoinsTheDeviceSums) {
  const Shape input{3, 2, 2};
  const size_t channels = 3;
  // The other worker: per channel c, a sum of 2(c+1) and of squares 10(c+1)^2 over 4 values.
  std::vector<double> other(2 * channels + 1);
  for (size_t c = 0; c < channels; ++c) {
    other[c] = 2.0 * (c + 1);
    other[channels + c] = 10.0 * (c + 1) * (c + 1);
  }
  other[2 * channels] = 4;
  OtherWorkerSum cpu_sums(other), gpu_inner(other);
  DeviceSumThroughHost gpu_sums(gpu_inner, stream());
  BoundBatchNorm c("{type: batchnorm2d}", input, cpu(), 7), g("{type: batchnorm2d}", input, gpu(), 7);
  StepInfo cpu_step, gpu_step;
  cpu_step.batch_stats = &cpu_sums;
  gpu_step.batch_stats = &gpu_sums;
  for (Pass pass : {Pass::Forward, Pass::Backward}) {
    c.layer->join_cross_worker_sums(pass, cpu_step);
    g.layer->join_cross_worker_sums(pass, gpu_step);
  }
  EXPECT_EQ(gpu_inner.calls, (std::vector<size_t>{2 * channels + 1, 2 * channels}));
  EXPECT_EQ(gpu_inner.calls, cpu_sums.calls);
  expect_close(g.buffers[0], c.buffers[0], kForwardTol, "idle running_mean");
  expect_close(g.buffers[1], c.buffers[1], kForwardTol, "idle running_var");
  // Nothing else is written: the gradients keep their preset value.
  for (size_t i = 0; i < g.grads.size(); ++i) expect_close(g.grads[i], c.grads[i], 0, "idle gradient");
}

TEST_F(GpuBatchStatsTest, NcclSumsDoublesOnTheDeviceOverOneRank) {
  SingleProcessCommunicator host;
  NcclCommunicator nccl(host, cuda_context(gpu()), Deadline(30000));
  ASSERT_EQ(nccl.memory(), SumMemory::Device);
  const size_t count = 1001;
  std::vector<double> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = 0.5 + static_cast<double>(i) * 1e-9;
  DeviceBuffer buffer;
  auto* device = static_cast<double*>(buffer.reserve(count * sizeof(double)));
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(device, values.data(), count * sizeof(double), cudaMemcpyHostToDevice, stream()));
  nccl.sum(device, count);
  std::vector<double> back(count);
  DPTRAIN_CUDA_CHECK(cudaMemcpyAsync(back.data(), device, count * sizeof(double), cudaMemcpyDeviceToHost, stream()));
  DPTRAIN_CUDA_CHECK(cudaStreamSynchronize(stream()));
  EXPECT_EQ(back, values);  // a sum over one rank, in double: every bit kept
  nccl.check_failure();
}

TEST_F(GpuBatchStatsTest, ALayerSummingOverNcclOnOneRankEqualsItsResultAlone) {
  SingleProcessCommunicator host;
  NcclCommunicator nccl(host, cuda_context(gpu()), Deadline(30000));
  const std::string yaml = "{type: batchnorm2d}";
  const Shape input{4, 6, 6};
  BoundBatchNorm alone(yaml, input, gpu(), 11), summed(yaml, input, gpu(), 11);
  const Tensor x = shifted_input(batch_shape(5, input), 21).to(gpu());
  const Tensor dy = random_host(x.shape(), 22).to(gpu());
  StepInfo local_step, nccl_step;
  nccl_step.batch_stats = &nccl;
  Tensor y1(x.shape(), gpu()), y2(x.shape(), gpu()), dx1(x.shape(), gpu()), dx2(x.shape(), gpu());
  alone.layer->forward(x, y1, local_step);
  summed.layer->forward(x, y2, nccl_step);
  alone.layer->backward(x, y1, dy, &dx1, local_step);
  summed.layer->backward(x, y2, dy, &dx2, nccl_step);
  expect_close(y2, y1.to_host(), 0, "y");
  expect_close(dx2, dx1.to_host(), 0, "dx");
  expect_close(summed.buffers[0], alone.buffers[0].to_host(), 0, "running_mean");
  expect_close(summed.buffers[1], alone.buffers[1].to_host(), 0, "running_var");
  for (size_t i = 0; i < alone.grads.size(); ++i) expect_close(summed.grads[i], alone.grads[i].to_host(), 0, "gradient");
  nccl.check_failure();
}

}  // namespace
}  // namespace dptrain::testing
