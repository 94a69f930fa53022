#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

constexpr size_t kFeatures = 2000;

// Runs a training forward of all-ones input through `layer` and returns the output.
Tensor ones_through(Layer& layer, const std::vector<uint64_t>& ids, uint64_t seed, uint64_t epoch,
                    Mode mode = Mode::Train) {
  Tensor x({ids.size(), kFeatures}), y({ids.size(), kFeatures});
  x.fill(1.0f);
  layer.forward(x, y, {mode, seed, epoch, ids.data()});
  return y;
}

// The output row of sample `position`.
std::vector<float> row(const Tensor& t, size_t position) {
  return {t.data() + position * kFeatures, t.data() + (position + 1) * kFeatures};
}

TEST(Dropout, EvalIsIdentity) {
  auto layer = make_layer("{type: dropout, rate: 0.5}", {3, 4});
  Tensor x = random_tensor({2, 3, 4}, 1), y(x.shape());
  layer->forward(x, y, {Mode::Eval, 1, 1, nullptr});
  for (size_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(y.data()[i], x.data()[i]);
  Tensor dy = random_tensor(x.shape(), 2), dx(x.shape());
  layer->backward(x, y, dy, &dx, {Mode::Eval, 1, 1, nullptr});
  for (size_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(dx.data()[i], dy.data()[i]);
}

TEST(Dropout, TrainKeepsAboutOneMinusRateScaled) {
  for (const double rate : {0.1, 0.5, 0.8}) {
    auto layer = make_layer("{type: dropout, rate: " + std::to_string(rate) + "}", {kFeatures});
    const std::vector<uint64_t> ids{3, 17, 4, 99, 1000};
    Tensor y = ones_through(*layer, ids, 7, 2);
    const float scale = static_cast<float>(1.0 / (1.0 - rate));
    size_t kept = 0;
    for (size_t i = 0; i < y.num_elements(); ++i) {
      if (y.data()[i] == 0.0f) continue;
      ASSERT_FLOAT_EQ(y.data()[i], scale) << i;
      ++kept;
    }
    const double n = static_cast<double>(y.num_elements());
    const double sd = std::sqrt(n * rate * (1 - rate));
    EXPECT_NEAR(static_cast<double>(kept), n * (1 - rate), 5 * sd) << "rate " << rate;
  }
}

TEST(Dropout, RateZeroTrainsAsIdentity) {
  auto layer = make_layer("{type: dropout, rate: 0}", {kFeatures});
  Tensor y = ones_through(*layer, {1, 2}, 3, 4);
  for (size_t i = 0; i < y.num_elements(); ++i) ASSERT_EQ(y.data()[i], 1.0f);
}

TEST(Dropout, MaskFollowsSampleIdNotBatchPosition) {
  auto layer = make_layer("{type: dropout, rate: 0.5}", {kFeatures});
  // Sample 42 alone (one worker's batch of 1) and at position 3 of a batch of 5.
  const auto alone = row(ones_through(*layer, {42}, 9, 3), 0);
  const auto inside = row(ones_through(*layer, {7, 8, 9, 42, 10}, 9, 3), 3);
  EXPECT_EQ(alone, inside);
  // And a different sample at the same position gets a different mask.
  EXPECT_NE(row(ones_through(*layer, {7, 8, 9, 43, 10}, 9, 3), 3), inside);
}

TEST(Dropout, MaskChangesWithEpochSeedAndLayer) {
  auto layer = make_layer("{type: dropout, rate: 0.5}", {kFeatures});
  const auto base = row(ones_through(*layer, {42}, 9, 3), 0);
  EXPECT_EQ(row(ones_through(*layer, {42}, 9, 3), 0), base);   // deterministic
  EXPECT_NE(row(ones_through(*layer, {42}, 9, 4), 0), base);   // next epoch
  EXPECT_NE(row(ones_through(*layer, {42}, 10, 3), 0), base);  // other seed

  // Two dropout layers of one model (told apart by their config path) draw different masks.
  ConfigMap model = ConfigMap::parse("layers: [{type: dropout, rate: 0.5}, {type: dropout, rate: 0.5}]");
  auto maps = model.get_map_list("layers");
  auto first = LayerRegistry::builtin().create(maps[0], {kFeatures}, cpu_backend());
  auto second = LayerRegistry::builtin().create(maps[1], {kFeatures}, cpu_backend());
  EXPECT_NE(row(ones_through(*first, {42}, 9, 3), 0), row(ones_through(*second, {42}, 9, 3), 0));
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  auto layer = make_layer("{type: dropout, rate: 0.3}", {kFeatures});
  const std::vector<uint64_t> ids{5, 6, 7};
  const StepInfo step{Mode::Train, 1, 2, ids.data()};
  Tensor x = random_tensor({3, kFeatures}, 3), y(x.shape());
  layer->forward(x, y, step);
  Tensor dy = random_tensor(x.shape(), 4), dx(x.shape());
  layer->backward(x, y, dy, &dx, step);
  for (size_t i = 0; i < x.num_elements(); ++i) {
    // y = x * m and dx = dy * m with the same m.
    const double m = y.data()[i] / x.data()[i];
    ASSERT_NEAR(dx.data()[i], dy.data()[i] * m, 1e-5 * (1 + std::fabs(dy.data()[i] * m))) << i;
  }
}

TEST(Dropout, GradientsMatchFiniteDifferences) {
  auto a = make_layer("{type: dropout, rate: 0.4}", {3, 5});
  expect_gradients_match(*a, 4, 71);
  GradCheckOptions eval;
  eval.mode = Mode::Eval;
  auto b = make_layer("{type: dropout, rate: 0.4}", {6});
  expect_gradients_match(*b, 2, 72, eval);
}

TEST(Dropout, TrainingNeedsSampleIds) {
  auto layer = make_layer("{type: dropout, rate: 0.5}", {4});
  Tensor x({2, 4}), y({2, 4});
  EXPECT_THROW(layer->forward(x, y, {Mode::Train, 1, 1, nullptr}), Error);
}

TEST(Dropout, RejectsRatesOutsideUnitInterval) {
  for (const char* rate : {"1", "1.5", "-0.1", "abc"}) {
    EXPECT_THROW(make_layer(std::string("{type: dropout, rate: ") + rate + "}", {4}), ConfigError) << rate;
  }
  EXPECT_THROW(make_layer("{type: dropout}", {4}), ConfigError);
}

}  // namespace
}  // namespace dptrain::testing
