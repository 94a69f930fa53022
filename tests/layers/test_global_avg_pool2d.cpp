// global_avg_pool2d: (C, H, W) -> (C, 1, 1) plane means, their gradient, and shape errors.
#include <gtest/gtest.h>

#include <vector>

#include "layers/global_avg_pool2d.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

TEST(GlobalAvgPool2d, ForwardAndBackwardByHand) {
  auto layer = make_layer("{type: global_avg_pool2d}", {2, 2, 3});
  ASSERT_EQ(layer->output_shape(), (Shape{2, 1, 1}));
  EXPECT_TRUE(layer->parameters().empty());
  // Sample 0: channel 0 = 1..6 (mean 3.5), channel 1 = -6..-1 (mean -3.5); sample 1: channel 0 all
  // 2, channel 1 = {0, 0, 0, 0, 0, 12} (mean 2).
  Tensor x = tensor_of({2, 2, 2, 3}, {1, 2, 3, 4, 5, 6, -6, -5, -4, -3, -2, -1,  //
                                      2, 2, 2, 2, 2, 2, 0,  0,  0,  0,  0,  12});
  Tensor y({2, 2, 1, 1});
  layer->forward(x, y, {});
  expect_near_all(y, {3.5, -3.5, 2, 2}, 1e-6, "y");
  Tensor dy = tensor_of({2, 2, 1, 1}, {6, -12, 3, 0}), dx(x.shape());
  layer->backward(x, y, dy, &dx, {});
  std::vector<double> expected;
  for (const double g : {1.0, -2.0, 0.5, 0.0}) expected.insert(expected.end(), 6, g);
  expect_near_all(dx, expected, 1e-6, "dx = dy / (H * W)");
}

TEST(GlobalAvgPool2d, GradientsMatchFiniteDifferences) {
  expect_gradients_match(*make_layer("{type: global_avg_pool2d}", {3, 5, 4}), 2, 71);
  // Large enough for the parallel path.
  expect_gradients_match(*make_layer("{type: global_avg_pool2d}", {160, 2, 2}), 2, 72);
}

TEST(GlobalAvgPool2d, FlattenAfterItGivesChannels) {
  auto pool = make_layer("{type: global_avg_pool2d}", {64, 7, 7});
  auto flatten = make_layer("{type: flatten}", pool->output_shape());
  EXPECT_EQ(flatten->output_shape(), (Shape{64}));
}

TEST(GlobalAvgPool2d, RejectsInputsItCannotTake) {
  input_shape_error("{type: global_avg_pool2d}", {16});
  input_shape_error("{type: global_avg_pool2d}", {4, 0, 3});
  EXPECT_THROW(make_layer("{type: global_avg_pool2d, kernel: 2}", {1, 4, 4}), ConfigError);
}

}  // namespace
}  // namespace dptrain::testing
