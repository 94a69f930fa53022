#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

std::unique_ptr<LossLayer> make_loss(size_t classes, const std::string& yaml = "{type: softmax_cross_entropy}") {
  auto layer = make_layer(yaml, {classes});
  auto* loss = dynamic_cast<LossLayer*>(layer.get());
  EXPECT_NE(loss, nullptr);
  layer.release();
  return std::unique_ptr<LossLayer>(loss);
}

TEST(SoftmaxCrossEntropy, KnownValues) {
  auto loss = make_loss(3);
  Tensor logits = tensor_of({2, 3}, {0, 0, 0, 1, 2, 3});
  const int32_t labels[] = {1, 2};
  Tensor g({2, 3});
  const LossStats stats = loss->loss(logits, labels, &g, 1.0f);
  const double z2 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(stats.loss_sum, std::log(3.0) + (z2 - 3.0), 1e-6);
  EXPECT_EQ(stats.count, 2u);
  EXPECT_EQ(stats.correct, 1u);  // sample 0: arg-max is class 0 (first of ties); sample 1: class 2
  EXPECT_NEAR(g.data()[0], 1.0 / 3, 1e-6);
  EXPECT_NEAR(g.data()[1], 1.0 / 3 - 1, 1e-6);
  EXPECT_NEAR(g.data()[5], std::exp(3.0 - z2) - 1, 1e-6);
}

TEST(SoftmaxCrossEntropy, StableForHugeLogits) {
  auto loss = make_loss(2);
  Tensor logits = tensor_of({2, 2}, {1000, 0, -1000, 50});
  const int32_t labels[] = {1, 1};
  Tensor g({2, 2});
  const LossStats stats = loss->loss(logits, labels, &g, 0.5f);
  EXPECT_NEAR(stats.loss_sum, 1000.0, 1e-3);
  EXPECT_EQ(stats.correct, 1u);
  for (size_t i = 0; i < 4; ++i) ASSERT_TRUE(std::isfinite(g.data()[i]));
  EXPECT_NEAR(g.data()[0], 0.5, 1e-6);
  EXPECT_NEAR(g.data()[1], -0.5, 1e-6);
}

TEST(SoftmaxCrossEntropy, LogitGradientMatchesFiniteDifferencesOfScaledLoss) {
  for (const size_t classes : {2u, 5u, 10u}) {
    for (const char* yaml : {"{type: softmax_cross_entropy}", "{type: softmax_cross_entropy, label_smoothing: 0.2}"}) {
      SCOPED_TRACE(yaml);
      auto loss = make_loss(classes, yaml);
      const size_t n = 4;
      const float grad_scale = 1.0f / 7;
      Tensor logits = random_tensor({n, classes}, classes);
      for (size_t i = 0; i < logits.num_elements(); ++i) logits.data()[i] *= 3.0f;
      std::vector<int32_t> labels(n);
      for (size_t s = 0; s < n; ++s) labels[s] = static_cast<int32_t>((3 * s + 1) % classes);
      Tensor g(logits.shape());
      loss->loss(logits, labels.data(), &g, grad_scale);
      const double eps = 1e-3;
      for (size_t i = 0; i < logits.num_elements(); ++i) {
        const float saved = logits.data()[i];
        logits.data()[i] = saved + static_cast<float>(eps);
        const double plus = loss->loss(logits, labels.data(), nullptr, grad_scale).loss_sum * grad_scale;
        logits.data()[i] = saved - static_cast<float>(eps);
        const double minus = loss->loss(logits, labels.data(), nullptr, grad_scale).loss_sum * grad_scale;
        logits.data()[i] = saved;
        EXPECT_NEAR(g.data()[i], (plus - minus) / (2 * eps), 1e-4) << "classes " << classes << " logit " << i;
      }
    }
  }
}

TEST(SoftmaxCrossEntropy, LabelSmoothingKnownValues) {
  // torch.nn.CrossEntropyLoss(label_smoothing=0.1) over 3 classes: the target is 0.9 * onehot + 0.1 / 3.
  auto loss = make_loss(3, "{type: softmax_cross_entropy, label_smoothing: 0.1}");
  Tensor logits = tensor_of({2, 3}, {0, 0, 0, 1, 2, 3});
  const int32_t labels[] = {1, 2};
  Tensor g({2, 3});
  const LossStats stats = loss->loss(logits, labels, &g, 0.5f);
  // Sample 0: every -log p_k is log 3, so the smoothed loss is log 3 as well. Sample 1: -log p_k =
  // z2 - z_k, whose mean over k is z2 - 2.
  const double z2 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(stats.loss_sum, std::log(3.0) + 0.9 * (z2 - 3.0) + 0.1 * (z2 - 2.0), 1e-6);
  EXPECT_EQ(stats.correct, 1u);  // accuracy is still arg-max against the label
  EXPECT_EQ(stats.count, 2u);
  const double expected[] = {0.5 * (1.0 / 3 - 0.1 / 3),
                             0.5 * (1.0 / 3 - 0.9 - 0.1 / 3),
                             0.5 * (1.0 / 3 - 0.1 / 3),
                             0.5 * (std::exp(1.0 - z2) - 0.1 / 3),
                             0.5 * (std::exp(2.0 - z2) - 0.1 / 3),
                             0.5 * (std::exp(3.0 - z2) - 0.9 - 0.1 / 3)};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(g.data()[i], expected[i], 1e-6) << "logit " << i;
  EXPECT_NEAR(g.data()[0], 0.15, 1e-6);
  EXPECT_NEAR(g.data()[1], -0.3, 1e-6);
}

TEST(SoftmaxCrossEntropy, NoSmoothingIsThePlainLossBitForBit) {
  auto plain = make_loss(7);
  auto zero = make_loss(7, "{type: softmax_cross_entropy, label_smoothing: 0}");
  auto smoothed = make_loss(7, "{type: softmax_cross_entropy, label_smoothing: 0.05}");
  Tensor logits = random_tensor({5, 7}, 3);
  const int32_t labels[] = {0, 6, 3, 3, 1};
  Tensor g_plain({5, 7}), g_zero({5, 7}), g_smoothed({5, 7});
  const LossStats a = plain->loss(logits, labels, &g_plain, 0.2f);
  const LossStats b = zero->loss(logits, labels, &g_zero, 0.2f);
  const LossStats c = smoothed->loss(logits, labels, &g_smoothed, 0.2f);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(a.correct, b.correct);
  for (size_t i = 0; i < g_plain.num_elements(); ++i) EXPECT_EQ(g_plain.data()[i], g_zero.data()[i]) << i;
  EXPECT_NE(a.loss_sum, c.loss_sum);  // the option is read
  EXPECT_EQ(a.correct, c.correct);
  for (size_t s = 0; s < 5; ++s) {
    // Both targets sum to one, so each sample's gradient sums to zero.
    double sum = 0;
    for (size_t j = 0; j < 7; ++j) sum += g_smoothed.data()[s * 7 + j];
    EXPECT_NEAR(sum, 0.0, 1e-6) << "sample " << s;
  }
}

TEST(SoftmaxCrossEntropy, LabelSmoothingOutsideItsRangeIsAConfigError) {
  for (const char* value : {"1", "-0.1", "1.5", "lots"}) {
    try {
      make_layer(std::string("{type: softmax_cross_entropy, label_smoothing: ") + value + "}", {4});
      ADD_FAILURE() << "label_smoothing " << value << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'label_smoothing'"), std::string::npos) << e.what();
    }
  }
  try {
    make_layer("{type: softmax_cross_entropy, label_smoothing: 1}", {4});
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("must be in [0, 1)"), std::string::npos) << e.what();
  }
}

TEST(SoftmaxCrossEntropy, ForwardPassesLogitsThrough) {
  auto loss = make_loss(4);
  EXPECT_EQ(loss->output_shape(), (Shape{4}));
  expect_gradients_match(*loss, 3, 81);
}

TEST(SoftmaxCrossEntropy, RejectsLabelsOutOfRange) {
  auto loss = make_loss(10);
  Tensor logits({2, 10});
  for (const int32_t bad : {10, -1, 1000}) {
    const int32_t labels[] = {3, bad};
    try {
      loss->loss(logits, labels, nullptr, 1.0f);
      ADD_FAILURE() << "label " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("label " + std::to_string(bad)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("10 classes"), std::string::npos) << e.what();
    }
  }
}

TEST(SoftmaxCrossEntropy, RejectsWrongShapes) {
  auto loss = make_loss(3);
  Tensor logits({2, 4}), g({2, 3});
  const int32_t labels[] = {0, 1};
  EXPECT_THROW(loss->loss(logits, labels, nullptr, 1.0f), ShapeError);
  Tensor ok({2, 3}), wrong_g({3, 3});
  EXPECT_THROW(loss->loss(ok, labels, &wrong_g, 1.0f), ShapeError);
  EXPECT_THROW(make_layer("{type: softmax_cross_entropy}", {2, 5}), ConfigError);
}

}  // namespace
}  // namespace dptrain::testing
