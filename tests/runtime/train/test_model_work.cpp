// Model::training_work: the FLOPs of a training step of the shipped models, against hand computations.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/core/cpu_backend.h"
#include "runtime/train/model.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& work_test_backend() {
  static CpuBackend backend;
  return backend;
}

// The model of a shipped config (configs/NAME.yaml) on (1, 28, 28) input, with `frozen` parameters.
std::unique_ptr<Model> shipped_model(const std::string& name, const std::vector<std::string>& frozen = {}) {
  const std::string path = std::string(DPTRAIN_SOURCE_DIR) + "/configs/" + name + ".yaml";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ConfigMap root = ConfigMap::parse(text.str(), path);
  std::vector<ConfigMap> layers = root.get_map_list("model");
  return std::make_unique<Model>(layers, Shape{1, 28, 28}, work_test_backend(), 1, frozen);
}

// FLOPs of the demo CNN by hand, per image. Convolutions: 2 * Cout * Ho * Wo * Cin * 9 for the
// products, plus Cout * Ho * Wo bias adds.
constexpr double kConv1Forward = 2.0 * 32 * 28 * 28 * 1 * 9 + 32 * 28 * 28;     //   476,672
constexpr double kConv2Product = 2.0 * 64 * 14 * 14 * 32 * 9;                   // 7,225,344
constexpr double kConv2Forward = kConv2Product + 64 * 14 * 14;                   // 7,237,888
constexpr double kDense1Forward = 2.0 * 128 * 3136 + 128;                        //   802,944
constexpr double kDense2Forward = 2.0 * 10 * 128 + 10;                           //     2,570

TEST(ModelWork, DemoCnnTotalMatchesTheHandCount) {
  const auto model = shipped_model("fashion_mnist");
  const LayerWork work = model->training_work();
  // Pooling, relu and flatten count no FLOPs.
  EXPECT_DOUBLE_EQ(work.forward_flops, kConv1Forward + kConv2Forward + kDense1Forward + kDense2Forward);
  // Backward: weight and bias gradients of every layer (as many FLOPs as forward), plus the data
  // gradient of every layer but the first, which reads the model's input.
  const double data_gradients = kConv2Product + 2.0 * 128 * 3136 + 2.0 * 10 * 128;
  EXPECT_DOUBLE_EQ(work.backward_flops, work.forward_flops + data_gradients);
  EXPECT_DOUBLE_EQ(work.flops(), 25070868);
}

TEST(ModelWork, AFrozenFirstLayerHasNoBackwardAndTheNextNoDataGradient) {
  const double all = shipped_model("fashion_mnist")->training_work().flops();
  // Nothing before the second convolution trains: it needs no dx either.
  EXPECT_DOUBLE_EQ(shipped_model("fashion_mnist", {"0.conv2d"})->training_work().flops(),
                   all - kConv1Forward - kConv2Product);
  // A frozen layer after a trained one still passes its gradient back (and computes its own).
  EXPECT_DOUBLE_EQ(shipped_model("fashion_mnist", {"3.conv2d"})->training_work().flops(), all);
}

TEST(ModelWork, ResNet20ConvolutionsMatchTheHandCount) {
  const auto model = shipped_model("resnet20_fashion_mnist");
  // Multiply-adds of the convolutions (none has a bias) and of the classifier.
  const double conv1 = 16.0 * 28 * 28 * 1 * 9;
  const double stage1 = 6 * (16.0 * 28 * 28 * 16 * 9);
  const double stage2 = 32.0 * 14 * 14 * 16 * 9 + 5 * (32.0 * 14 * 14 * 32 * 9) + 32.0 * 14 * 14 * 16;  // + 1x1 shortcut
  const double stage3 = 64.0 * 7 * 7 * 32 * 9 + 5 * (64.0 * 7 * 7 * 64 * 9) + 64.0 * 7 * 7 * 32;
  const double fc = 10.0 * 64;
  EXPECT_DOUBLE_EQ(conv1 + stage1 + stage2 + stage3 + fc, 31021952);
  double arithmetic = 0;
  for (const auto& layer : model->layers()) {
    const LayerWork w = layer->work(InputGradient::Computed);
    if (w.bound == WorkBound::Arithmetic) arithmetic += w.forward_flops;
  }
  EXPECT_DOUBLE_EQ(arithmetic, 2 * 31021952.0 + 10);  // + the classifier's bias
  // Batch norm, the residual adds and the pooling add a few FLOPs an element on top.
  const LayerWork work = model->training_work();
  EXPECT_GT(work.forward_flops, arithmetic);
  EXPECT_LT(work.forward_flops, 1.05 * arithmetic);
  EXPECT_GT(work.forward_bytes, 0);
}

}  // namespace
}  // namespace dptrain
