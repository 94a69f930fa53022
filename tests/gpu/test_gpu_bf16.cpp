// precision bf16 on the GPU: conv2d and dense forward and backward against the CPU float32 oracle
// (given float32 tensors, which they convert), whole model steps with bf16 activations between
// layers, and the switch back to float32. bf16 keeps 8 significant bits, so results
// are compared by their error relative to the oracle's magnitude (a few 1e-2 at most), and the
// error must also be large enough to show that bf16 was used at all.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/cuda/cuda_backend.h"
#include "runtime/train/model.h"
#include "tests/gpu/gpu_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Whether a comparison also demands visible bf16 rounding (float32 results would be too close).
enum class Rounding { MustShow, Any };

// Expects `actual` (device) to match `expected` (host, float32): the error's norm at most
// `tolerance` times the oracle's norm, and every element within 3 * tolerance * max(|e|, rms(e)).
void expect_bf16_close(const Tensor& actual, const Tensor& expected, double tolerance, Rounding rounding,
                       const std::string& what) {
  const Tensor got = actual.to_host();
  ASSERT_EQ(got.num_elements(), expected.num_elements()) << what;
  double sum_e2 = 0, sum_d2 = 0;
  for (size_t i = 0; i < expected.num_elements(); ++i) {
    const double e = expected.data()[i], d = got.data()[i] - e;
    sum_e2 += e * e;
    sum_d2 += d * d;
  }
  ASSERT_GT(sum_e2, 0) << what << ": the oracle is all zeros, nothing is compared";
  const double rms = std::sqrt(sum_e2 / static_cast<double>(expected.num_elements()));
  const double relative = std::sqrt(sum_d2 / sum_e2);
  EXPECT_LE(relative, tolerance) << what << ": relative error norm";
  if (rounding == Rounding::MustShow) {
    EXPECT_GT(relative, 1e-4) << what << ": as close as float32; was it computed in bf16?";
  }
  size_t bad = 0;
  for (size_t i = 0; i < expected.num_elements(); ++i) {
    const double e = expected.data()[i], a = got.data()[i];
    if (!(std::fabs(a - e) <= 3 * tolerance * std::max(rms, std::fabs(e))) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: cuda bf16 " << a << ", cpu float32 " << e << " (rms " << rms << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << expected.num_elements() << " elements differ";
}

// Runs its tests with the shared context in precision bf16, restoring the previous one after.
class GpuBf16Test : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    previous_ = cuda_context(gpu()).precision();
    cuda_context(gpu()).set_precision(Precision::Bf16);
  }
  void TearDown() override {
    if (!IsSkipped()) cuda_context(gpu()).set_precision(previous_);
  }

 private:
  Precision previous_ = Precision::Float32;
};

// One layer configuration to compare.
struct Bf16Case {
  std::string name;  // test name suffix
  std::string yaml;  // the layer's config
  Shape input;       // per-sample input shape
  size_t batch;
  // A convolution that cuDNN cannot run in bf16 (one input channel, on some GPUs) computes in
  // float32 instead, so its forward and data gradient need not show bf16 rounding.
  Rounding rounding = Rounding::MustShow;
};

void PrintTo(const Bf16Case& c, std::ostream* out) { *out << c.name; }

// A CPU and a CUDA layer of one config with the same parameters, and their buffers.
struct LayerPair {
  std::unique_ptr<Layer> cpu, gpu;
  std::vector<Tensor> cpu_params, cpu_grads, gpu_params, gpu_grads;

  LayerPair(const std::string& yaml, const Shape& input) {
    ConfigMap cpu_options = ConfigMap::parse(yaml), gpu_options = ConfigMap::parse(yaml);
    cpu = LayerRegistry::builtin().create(cpu_options, input, GpuTest::cpu());
    gpu = LayerRegistry::builtin().create(gpu_options, input, GpuTest::gpu());
    for (const auto& spec : cpu->parameters()) {
      cpu_params.emplace_back(spec.shape);
      cpu_grads.emplace_back(spec.shape);
    }
    cpu->bind(cpu_params, cpu_grads);
    Rng rng(hash_key(42, 8));
    cpu->init_parameters(rng);
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      const Tensor noise = random_host(cpu_params[i].shape(), 200 + i);
      for (size_t j = 0; j < noise.num_elements(); ++j) cpu_params[i].data()[j] += 0.1f * noise.data()[j];
      gpu_params.push_back(cpu_params[i].to(GpuTest::gpu()));
      gpu_grads.emplace_back(cpu_params[i].shape(), GpuTest::gpu());
    }
    gpu->bind(gpu_params, gpu_grads);
  }
};

class GpuBf16LayerTest : public GpuBf16Test, public ::testing::WithParamInterface<Bf16Case> {};

TEST_P(GpuBf16LayerTest, MatchesCpuFloat32ForwardAndBackward) {
  const Bf16Case& c = GetParam();
  LayerPair layers(c.yaml, c.input);
  const StepInfo step{};
  const Tensor x = random_host(batch_shape(c.batch, c.input), 3);
  Tensor y_cpu(batch_shape(c.batch, layers.cpu->output_shape()));
  layers.cpu->forward(x, y_cpu, step);
  const Tensor x_gpu = x.to(gpu());
  Tensor y_gpu(y_cpu.shape(), gpu());
  layers.gpu->forward(x_gpu, y_gpu, step);
  expect_bf16_close(y_gpu, y_cpu, 2e-2, c.rounding, c.name + " forward y");

  const Tensor dy = random_host(y_cpu.shape(), 4);
  Tensor dx_cpu(x.shape()), dx_gpu(x.shape(), gpu());
  layers.cpu->backward(x, y_cpu, dy, &dx_cpu, step);
  layers.gpu->backward(x_gpu, y_gpu, dy.to(gpu()), &dx_gpu, step);
  expect_bf16_close(dx_gpu, dx_cpu, 2e-2, c.rounding, c.name + " backward dx");
  // Index 0 is the weight (a bf16 product); a bias gradient is a float32 sum of dy.
  for (size_t i = 0; i < layers.cpu_grads.size(); ++i) {
    expect_bf16_close(layers.gpu_grads[i], layers.cpu_grads[i], 2e-2, i == 0 ? c.rounding : Rounding::Any,
                      c.name + " gradient " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(
    ConvAndDense, GpuBf16LayerTest,
    ::testing::Values(Bf16Case{"conv_first_layer", "{type: conv2d, out_channels: 32, kernel: 3, padding: 1}",
                               {1, 28, 28}, 16, Rounding::Any},
                      Bf16Case{"conv16to32", "{type: conv2d, out_channels: 32, kernel: 3, padding: 1}", {16, 14, 14}, 8},
                      Bf16Case{"conv5x5_stride2_nobias",
                               "{type: conv2d, out_channels: 6, kernel: 5, stride: 2, bias: false}", {4, 15, 13}, 3},
                      Bf16Case{"dense", "{type: dense, units: 128}", {64, 7, 7}, 32},
                      Bf16Case{"dense_odd_nobias", "{type: dense, units: 10, bias: false}", {33}, 5}),
    [](const ::testing::TestParamInfo<Bf16Case>& info) { return info.param.name; });

TEST_F(GpuBf16Test, ConvReplansWhenThePrecisionChangesBack) {
  LayerPair layers("{type: conv2d, out_channels: 8, kernel: 3, padding: 1}", {8, 10, 10});
  const StepInfo step{};
  const Tensor x = random_host({4, 8, 10, 10}, 5);
  Tensor y_cpu({4, 8, 10, 10});
  layers.cpu->forward(x, y_cpu, step);
  const Tensor x_gpu = x.to(gpu());
  Tensor y_gpu(y_cpu.shape(), gpu());
  layers.gpu->forward(x_gpu, y_gpu, step);
  expect_bf16_close(y_gpu, y_cpu, 2e-2, Rounding::MustShow, "bf16 y");
  cuda_context(gpu()).set_precision(Precision::Float32);
  layers.gpu->forward(x_gpu, y_gpu, step);
  expect_close(y_gpu, y_cpu, 1e-4, "float32 y after bf16");
}

// One training step of `layers` on the CPU (float32) and on the GPU in bf16 from the same
// parameters: the loss within `loss_tol` (relative), the whole gradient buffer within `grad_tol` by
// relative error norm (a ReLU or max-pool choice may flip where bf16 moves a value across a tie,
// so elements are not compared one by one), and the parameters untouched. Returns the GPU model's
// description of its activation types.
std::string compare_model_step(const std::vector<std::string>& layers, const Shape& input, double loss_tol,
                               double grad_tol) {
  std::vector<ConfigMap> cpu_layers = layer_configs(layers), gpu_layers = layer_configs(layers);
  Model cpu(cpu_layers, input, GpuTest::cpu(), 7);
  Model gpu(gpu_layers, input, GpuTest::gpu(), 7);
  const size_t n = 32;
  const Tensor x = random_host(batch_shape(n, input), 6);
  std::vector<int32_t> labels(n);
  std::vector<uint64_t> ids(n);
  for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>((3 * s) % 10), ids[s] = s;
  StepInfo info;
  info.sample_ids = ids.data();
  const LossStats a = cpu.step(x, labels.data(), info, 1.0f / n);
  const LossStats b = gpu.step(x, labels.data(), info, 1.0f / n, [](size_t, size_t) {});
  EXPECT_NEAR(b.loss_sum, a.loss_sum, loss_tol * a.loss_sum);
  const Tensor g = gpu.gradients().to_host();
  const Tensor& e = cpu.gradients();
  EXPECT_EQ(g.num_elements(), e.num_elements());
  double sum_e2 = 0, sum_d2 = 0;
  for (size_t i = 0; i < e.num_elements() && i < g.num_elements(); ++i) {
    const double d = double{g.data()[i]} - e.data()[i];
    sum_e2 += double{e.data()[i]} * e.data()[i];
    sum_d2 += d * d;
  }
  EXPECT_LE(std::sqrt(sum_d2 / sum_e2), grad_tol) << "gradient buffer, relative error norm";
  EXPECT_GT(std::sqrt(sum_d2 / sum_e2), 1e-5) << "gradient buffer as close as float32: was bf16 used?";
  // Master weights stay float32 and untouched by the step.
  expect_close(gpu.parameters(), cpu.parameters(), 0, "parameters after the step");
  return gpu.describe_activation_types();
}

// The reference model's layers, one training step. bf16 keeps 8 significant bits: each rounding
// of an activation or gradient is off by at most 2^-9 (0.2 %) relative, and the products' inputs
// are rounded too. Forward, this model rounds about 8 times between the input and the logits (the
// input, then the outputs of 2 convolutions, 2 ReLUs and 2 max-pools in bf16 and the first dense
// layer's input), and about as often backward; errors of independent roundings add up roughly as
// a square root, and a dozen of them stay below 1 % on the loss and a few % on the gradients, so
// 1e-2 and 5e-2.
TEST_F(GpuBf16Test, ModelStepMatchesCpuFloat32) {
  const std::string types = compare_model_step(
      {"{type: conv2d, out_channels: 16, kernel: 3, padding: 1}", "{type: relu}", "{type: max_pool2d, kernel: 2}",
       "{type: conv2d, out_channels: 32, kernel: 3, padding: 1}", "{type: relu}", "{type: max_pool2d, kernel: 2}",
       "{type: flatten}", "{type: dense, units: 64}", "{type: relu}", "{type: dense, units: 10}",
       "{type: softmax_cross_entropy}"},
      {1, 16, 16}, 1e-2, 5e-2);
  // bf16 from the first convolution to the first dense layer, which writes float32; the model
  // converts only the input and the second dense layer's input (after the float32 ReLU).
  EXPECT_EQ(types, "activations: 7 of 10 layers write bf16; inputs converted for 0.conv2d (to bf16), "
                   "9.dense (to bf16)");
}

// A residual model: convolutions, batch norm, ReLU and the residual add in bf16, global average
// pooling in float32 (converted at its input). Deeper than the reference model (about 12 roundings
// forward on the longest path, as many backward, and batch norm divides by a standard deviation
// computed from bf16 inputs), so 2e-2 on the loss and 8e-2 on the gradients.
TEST_F(GpuBf16Test, ResidualModelStepMatchesCpuFloat32) {
  const std::string types = compare_model_step(
      {"{type: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}", "{type: batchnorm2d}", "{type: relu}",
       "{type: basic_block, out_channels: 16, stride: 2}", "{type: global_avg_pool2d}", "{type: flatten}",
       "{type: dense, units: 10}", "{type: softmax_cross_entropy}"},
      {3, 12, 12}, 2e-2, 8e-2);
  EXPECT_NE(types.find("(to float32)"), std::string::npos) << types;
}

}  // namespace
}  // namespace dptrain::testing
