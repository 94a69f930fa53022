// leaky_relu, sigmoid, tanh and silu: values and gradients against PyTorch's formulas evaluated by
// hand, finite differences, options, and the parallel path.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "layers/activation.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// One activation's expected y and dx for x = {-2, -0.5, 0, 0.5, 3} and dy = {1, 2, 3, 4, 5}
// (computed in double precision from PyTorch's definitions).
struct ByHand {
  std::string yaml;
  std::vector<double> y, dx;
};

void PrintTo(const ByHand& c, std::ostream* os) { *os << c.yaml; }

class ActivationByHand : public ::testing::TestWithParam<ByHand> {};

TEST_P(ActivationByHand, ForwardAndBackward) {
  const ByHand& c = GetParam();
  auto layer = make_layer(c.yaml, {5});
  EXPECT_EQ(layer->output_shape(), (Shape{5}));
  EXPECT_TRUE(layer->parameters().empty());
  Tensor x = tensor_of({1, 5}, {-2, -0.5f, 0, 0.5f, 3}), y({1, 5});
  layer->forward(x, y, {});
  expect_near_all(y, c.y, 1e-6, "y");
  Tensor dy = tensor_of({1, 5}, {1, 2, 3, 4, 5}), dx({1, 5});
  layer->backward(x, y, dy, &dx, {});
  expect_near_all(dx, c.dx, 1e-6, "dx");
}

INSTANTIATE_TEST_SUITE_P(
    Functions, ActivationByHand,
    ::testing::Values(
        // PyTorch's leaky_relu gradient at x == 0 is the negative slope.
        ByHand{"{type: leaky_relu}", {-0.02, -0.005, 0, 0.5, 3}, {0.01, 0.02, 0.03, 4, 5}},
        ByHand{"{type: leaky_relu, negative_slope: 0.2}", {-0.4, -0.1, 0, 0.5, 3}, {0.2, 0.4, 0.6, 4, 5}},
        ByHand{"{type: sigmoid}",
               {0.119202922, 0.377540669, 0.5, 0.622459331, 0.952574127},
               {0.104993585, 0.470007424, 0.75, 0.940014849, 0.225883299}},
        ByHand{"{type: tanh}",
               {-0.96402758, -0.462117157, 0.0, 0.462117157, 0.995054754},
               {0.070650825, 1.572895466, 3.0, 3.145790932, 0.049330186}},
        ByHand{"{type: silu}",
               {-0.238405844, -0.188770334, 0.0, 0.311229666, 2.85772238},
               {-0.090784249, 0.520077625, 1.5, 2.959844749, 5.44052053}}));

TEST(Activation, GradientsMatchFiniteDifferences) {
  GradCheckOptions kinked;
  kinked.min_abs_input = 0.05f;  // leaky_relu: keep inputs away from the kink at 0
  expect_gradients_match(*make_layer("{type: leaky_relu, negative_slope: 0.1}", {3, 4, 5}), 2, 61, kinked);
  GradCheckOptions smooth;
  smooth.eps = 1e-3;
  smooth.tolerance = 5e-3;
  for (const char* type : {"sigmoid", "tanh", "silu"}) {
    SCOPED_TRACE(type);
    expect_gradients_match(*make_layer(std::string("{type: ") + type + "}", {3, 4, 5}), 2, 62, smooth);
    expect_gradients_match(*make_layer(std::string("{type: ") + type + "}", {7}), 3, 63, smooth);
  }
}

TEST(Activation, LargeTensorsTakeTheParallelPathWithTheSameValues) {
  const Shape shape{32, 28, 28};
  Tensor x = random_tensor(batch_shape(3, shape), 64), dy = random_tensor(x.shape(), 65);
  for (const char* type : {"leaky_relu", "sigmoid", "tanh", "silu"}) {
    SCOPED_TRACE(type);
    auto big = make_layer(std::string("{type: ") + type + "}", shape);
    auto one = make_layer(std::string("{type: ") + type + "}", {1});
    Tensor y(x.shape()), dx(x.shape()), y1({1, 1}), dx1({1, 1});
    big->forward(x, y, {});
    big->backward(x, y, dy, &dx, {});
    for (size_t i = 0; i < x.num_elements(); i += 997) {
      Tensor xi = tensor_of({1, 1}, {x.data()[i]}), dyi = tensor_of({1, 1}, {dy.data()[i]});
      one->forward(xi, y1, {});
      one->backward(xi, y1, dyi, &dx1, {});
      ASSERT_EQ(y.data()[i], y1.data()[0]) << i;
      ASSERT_EQ(dx.data()[i], dx1.data()[0]) << i;
    }
  }
}

TEST(Activation, SaturatesWithoutNaN) {
  Tensor x = tensor_of({1, 4}, {-100, -30, 30, 100}), y({1, 4}), dy = tensor_of({1, 4}, {1, 1, 1, 1}), dx({1, 4});
  for (const char* type : {"sigmoid", "tanh", "silu"}) {
    SCOPED_TRACE(type);
    auto layer = make_layer(std::string("{type: ") + type + "}", {4});
    layer->forward(x, y, {});
    layer->backward(x, y, dy, &dx, {});
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(std::isfinite(y.data()[i])) << i;
      EXPECT_TRUE(std::isfinite(dx.data()[i])) << i;
    }
  }
  auto silu = make_layer("{type: silu}", {4});
  silu->forward(x, y, {});
  expect_near_all(y, {0, -2.8e-12, 30, 100}, 1e-6, "silu saturates to 0 and x");
}

TEST(Activation, RejectsOptionsItDoesNotTake) {
  EXPECT_THROW(make_layer("{type: sigmoid, negative_slope: 0.1}", {3}), ConfigError);
  EXPECT_THROW(make_layer("{type: leaky_relu, slope: 0.1}", {3}), ConfigError);
  EXPECT_THROW(make_layer("{type: leaky_relu, negative_slope: nan}", {3}), ConfigError);
  EXPECT_THROW(make_layer("{type: tanh}", {}), ConfigError);
  EXPECT_STREQ(make_layer("{type: tanh}", {2})->type(), "tanh");
}

}  // namespace
}  // namespace dptrain::testing
