// Predictor: a checkpoint's model in evaluation mode. Probabilities equal a hand computation with batch
// norm's running statistics and without dropout, do not depend on the batch, and a checkpoint that does
// not fit the model is refused naming the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/train/predictor.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::error_of;
using ::testing::HasSubstr;

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// Batch norm over 2 channels of 1 x 1, dropout, and a dense layer of 3 classes.
const char* const kRun = R"(name: tiny
seed: 5
data:
  type: synthetic
  shape: [2, 1, 1]
model:
  - {type: batchnorm2d, name: bn}
  - {type: dropout, rate: 0.5}
  - {type: flatten}
  - {type: dense, name: fc, units: 3}
  - {type: softmax_cross_entropy}
optimizer:
  type: sgd
  lr: 0.1
train:
  batch_size: 4
  epochs: 1
)";

const float kGamma[2] = {1.5f, -0.5f}, kBeta[2] = {0.25f, 1.0f};
const float kMean[2] = {0.4f, -1.0f}, kVar[2] = {2.0f, 0.5f};
const float kWeight[3][2] = {{1.0f, -2.0f}, {0.5f, 0.75f}, {-1.25f, 0.1f}};
const float kBias[3] = {0.1f, -0.2f, 0.3f};

CheckpointState tiny_state() {
  CheckpointState state;
  state.parameters = {
      {"bn.weight", {2}, {kGamma[0], kGamma[1]}},
      {"bn.bias", {2}, {kBeta[0], kBeta[1]}},
      {"fc.weight", {3, 2}, {kWeight[0][0], kWeight[0][1], kWeight[1][0], kWeight[1][1], kWeight[2][0], kWeight[2][1]}},
      {"fc.bias", {3}, {kBias[0], kBias[1], kBias[2]}}};
  state.buffers = {{"bn.running_mean", {2}, {kMean[0], kMean[1]}}, {"bn.running_var", {2}, {kVar[0], kVar[1]}}};
  return state;
}

// The probabilities of input (a, b), by hand: batch norm with the running statistics, no dropout.
std::vector<double> by_hand(float a, float b) {
  const float x[2] = {a, b};
  double y[2], z[3], sum = 0;
  for (int c = 0; c < 2; ++c) y[c] = kGamma[c] * (x[c] - kMean[c]) / std::sqrt(kVar[c] + 1e-5) + kBeta[c];
  for (int k = 0; k < 3; ++k) {
    z[k] = kWeight[k][0] * y[0] + kWeight[k][1] * y[1] + kBias[k];
    sum += std::exp(z[k]);
  }
  return {std::exp(z[0]) / sum, std::exp(z[1]) / sum, std::exp(z[2]) / sum};
}

TEST(Predictor, ProbabilitiesAreTheEvaluationModelsWhateverTheBatch) {
  RunConfig config = RunConfig::parse(kRun, "tiny.yaml");
  Predictor predictor(config, {2, 1, 1}, tiny_state(), "tiny.h5", cpu());
  ASSERT_EQ(predictor.num_classes(), 3u);
  std::vector<float> inputs = {0.3f, -2.0f, 1.7f, 0.4f, -0.9f, 3.1f, 0.0f, 0.0f, 5.0f, -4.0f};
  const Tensor all = predictor.probabilities(Tensor::view(inputs.data(), {5, 2, 1, 1}));
  ASSERT_EQ(all.shape(), (Shape{5, 3}));
  for (size_t i = 0; i < 5; ++i) {
    const std::vector<double> expected = by_hand(inputs[2 * i], inputs[2 * i + 1]);
    double sum = 0;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_NEAR(all.data()[i * 3 + k], expected[k], 1e-6) << "sample " << i << " class " << k;
      sum += all.data()[i * 3 + k];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    // One sample at a time: the same (running statistics, not the batch's).
    const Tensor one = predictor.probabilities(Tensor::view(inputs.data() + 2 * i, {1, 2, 1, 1}));
    for (size_t k = 0; k < 3; ++k) EXPECT_FLOAT_EQ(one.data()[k], all.data()[i * 3 + k]);
  }
}

TEST(Predictor, ACheckpointOfAnotherModelIsRefusedNamingTheFile) {
  RunConfig config = RunConfig::parse(kRun, "tiny.yaml");
  CheckpointState other = tiny_state();
  other.parameters[2].shape = {3, 3};
  other.parameters[2].values.resize(9);
  EXPECT_THAT(error_of<CheckpointError>([&] {
                Predictor p(config, {2, 1, 1}, other, "other.h5", cpu());
              }),
              HasSubstr("other.h5"));
  RunConfig again = RunConfig::parse(kRun, "tiny.yaml");
  CheckpointState diverged = tiny_state();
  diverged.parameters[3].values[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(error_of<CheckpointError>([&] {
                Predictor p(again, {2, 1, 1}, diverged, "nan.h5", cpu());
              }),
              HasSubstr("/parameters/fc.bias"));
}

TEST(Predictor, SoftmaxIsExactAndDoesNotOverflow) {
  const float logits[6] = {0.0f, std::log(2.0f), std::log(3.0f), 1000.0f, 1000.0f, -1000.0f};
  float p[6];
  softmax_rows(logits, 2, 3, p);
  EXPECT_NEAR(p[0], 1.0 / 6, 1e-7);
  EXPECT_NEAR(p[1], 2.0 / 6, 1e-7);
  EXPECT_NEAR(p[2], 3.0 / 6, 1e-7);
  EXPECT_FLOAT_EQ(p[3], 0.5f);
  EXPECT_FLOAT_EQ(p[4], 0.5f);
  EXPECT_EQ(p[5], 0.0f);
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
