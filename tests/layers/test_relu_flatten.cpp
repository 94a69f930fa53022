#include <gtest/gtest.h>

#include "layers/registry.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

TEST(Relu, ForwardAndBackwardByHand) {
  auto layer = make_layer("{type: relu}", {5});
  Tensor x = tensor_of({1, 5}, {-2, -0.5f, 0, 0.5f, 3}), y({1, 5});
  layer->forward(x, y, {});
  expect_near_all(y, {0, 0, 0, 0.5, 3}, 0, "y");
  Tensor dy = tensor_of({1, 5}, {1, 2, 3, 4, 5}), dx({1, 5});
  layer->backward(x, y, dy, &dx, {});
  expect_near_all(dx, {0, 0, 0, 4, 5}, 0, "dx (0 at x == 0)");
}

TEST(Relu, LargeTensorMatchesElementwise) {
  // Big enough to take the parallel path.
  auto layer = make_layer("{type: relu}", {32, 28, 28});
  Tensor x = random_tensor({3, 32, 28, 28}, 5), y(x.shape()), dy = random_tensor(x.shape(), 6), dx(x.shape());
  layer->forward(x, y, {});
  layer->backward(x, y, dy, &dx, {});
  for (size_t i = 0; i < x.num_elements(); ++i) {
    ASSERT_EQ(y.data()[i], x.data()[i] > 0 ? x.data()[i] : 0.0f) << i;
    ASSERT_EQ(dx.data()[i], x.data()[i] > 0 ? dy.data()[i] : 0.0f) << i;
  }
}

TEST(Relu, GradientsMatchFiniteDifferences) {
  GradCheckOptions opt;
  opt.min_abs_input = 0.05f;  // keep inputs away from the kink at 0
  auto a = make_layer("{type: relu}", {3, 4, 5});
  expect_gradients_match(*a, 2, 51, opt);
  auto b = make_layer("{type: relu}", {7});
  expect_gradients_match(*b, 3, 52, opt);
}

TEST(Flatten, ShapesAndCopy) {
  auto layer = make_layer("{type: flatten}", {2, 3, 4});
  EXPECT_EQ(layer->output_shape(), (Shape{24}));
  EXPECT_TRUE(layer->parameters().empty());
  Tensor x = random_tensor({2, 2, 3, 4}, 3), y({2, 24});
  layer->forward(x, y, {});
  for (size_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(y.data()[i], x.data()[i]);
  Tensor dy = random_tensor({2, 24}, 4), dx(x.shape());
  layer->backward(x, y, dy, &dx, {});
  for (size_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(dx.data()[i], dy.data()[i]);
  Tensor wrong = dy.reshaped({2, 4, 6});
  EXPECT_THROW(layer->forward(x, wrong, {}), ShapeError);
}

TEST(Flatten, IsOneLayerForEveryBackendThatCopiesThroughIt) {
  HostBackend device;  // no layer is registered for it by name: flatten serves any backend
  ConfigMap options = ConfigMap::parse("{type: flatten}");
  auto layer = LayerRegistry::builtin().create(options, {2, 3}, device);
  const Tensor x = random_tensor({4, 2, 3}, 5).to(device);
  Tensor y({4, 6}, device);
  layer->forward(x, y, {});
  EXPECT_EQ(device.on_device, 1u);
  const Tensor host_y = y.to_host(), host_x = x.to_host();
  for (size_t i = 0; i < host_x.num_elements(); ++i) ASSERT_EQ(host_y.data()[i], host_x.data()[i]);
  Tensor shared = x.reshaped({4, 6});
  layer->forward(x, shared, {});
  EXPECT_EQ(device.on_device, 1u) << "output that shares the input's memory is not copied";
  Tensor dx({4, 2, 3}, device);
  layer->backward(x, y, y, &dx, {});
  EXPECT_EQ(device.on_device, 2u);
}

TEST(Flatten, GradientsMatchFiniteDifferences) {
  auto layer = make_layer("{type: flatten}", {3, 2, 5});
  expect_gradients_match(*layer, 2, 61);
}

TEST(Flatten, RejectsScalarInput) {
  const std::string msg = input_shape_error("{type: flatten}", {});
  EXPECT_NE(msg.find("at least one dimension"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dptrain::testing
