#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Forward and backward of dense against direct loops, for an input of shape `in` (any rank).
void check_against_loops(const std::string& yaml, const Shape& in, size_t batch, bool bias) {
  auto layer = make_layer(yaml, in);
  const size_t f = num_elements(in), u = layer->output_shape()[0];
  BoundParams p = bind_fresh_parameters(*layer, 3);
  Tensor x = random_tensor(batch_shape(batch, in), 8), y({batch, u});
  Tensor dy = random_tensor(y.shape(), 9), dx(x.shape());
  layer->forward(x, y, {});
  layer->backward(x, y, dy, &dx, {});
  const float* w = p.params[0].data();  // (u, f)
  std::vector<double> y_ref(batch * u), dx_ref(batch * f, 0.0), dw_ref(u * f, 0.0), db_ref(u, 0.0);
  for (size_t s = 0; s < batch; ++s) {
    for (size_t j = 0; j < u; ++j) {
      double acc = bias ? p.params[1].data()[j] : 0.0;
      for (size_t i = 0; i < f; ++i) acc += static_cast<double>(w[j * f + i]) * x.data()[s * f + i];
      y_ref[s * u + j] = acc;
      const double g = dy.data()[s * u + j];
      db_ref[j] += g;
      for (size_t i = 0; i < f; ++i) {
        dx_ref[s * f + i] += g * w[j * f + i];
        dw_ref[j * f + i] += g * x.data()[s * f + i];
      }
    }
  }
  expect_near_all(y, y_ref, 1e-4, "y");
  expect_near_all(dx, dx_ref, 1e-4, "dx");
  expect_near_all(p.grads[0], dw_ref, 1e-4, "dweight");
  if (bias) expect_near_all(p.grads[1], db_ref, 1e-4, "dbias");
}

TEST(Dense, MatchesDirectLoops) {
  check_against_loops("{type: dense, units: 7}", {5}, 4, true);
  check_against_loops("{type: dense, units: 3, bias: false}", {2, 3, 4}, 6, false);  // flattens (C, H, W)
  check_against_loops("{type: dense, units: 130}", {70}, 33, true);
}

TEST(Dense, GradientsMatchFiniteDifferences) {
  auto a = make_layer("{type: dense, units: 6}", {9});
  expect_gradients_match(*a, 4, 21);
  auto b = make_layer("{type: dense, units: 4, bias: false}", {2, 3, 3});
  expect_gradients_match(*b, 3, 22);
  auto c = make_layer("{type: dense, units: 1}", {5});
  expect_gradients_match(*c, 1, 23);
}

TEST(Dense, ShapesAndParameters) {
  auto layer = make_layer("{type: dense, units: 128}", {64, 7, 7});
  EXPECT_EQ(layer->output_shape(), (Shape{128}));
  auto specs = layer->parameters();
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "weight");
  EXPECT_EQ(specs[0].shape, (Shape{128, 3136}));
  EXPECT_EQ(specs[1].name, "bias");
  EXPECT_EQ(specs[1].shape, (Shape{128}));
  EXPECT_EQ(make_layer("{type: dense, units: 3, bias: false}", {4})->parameters().size(), 1u);
}

TEST(Dense, HeUniformInitialisation) {
  auto layer = make_layer("{type: dense, units: 50, init: he_uniform}", {400});
  BoundParams b;
  for (const auto& spec : layer->parameters()) b.params.emplace_back(spec.shape), b.grads.emplace_back(spec.shape);
  b.params[1].fill(3.0f);
  layer->bind(b.params, b.grads);
  Rng rng(9);
  layer->init_parameters(rng);
  const double bound = std::sqrt(6.0 / 400);
  double mean = 0;
  float largest = 0;
  for (size_t i = 0; i < b.params[0].num_elements(); ++i) {
    mean += b.params[0].data()[i];
    largest = std::max(largest, std::fabs(b.params[0].data()[i]));
  }
  EXPECT_LE(largest, bound);
  EXPECT_GT(largest, 0.9 * bound);
  EXPECT_NEAR(mean / b.params[0].num_elements(), 0.0, 0.01 * bound);
  for (size_t i = 0; i < 50; ++i) EXPECT_EQ(b.params[1].data()[i], 0.0f);
}

TEST(Dense, HandComputedCase) {
  auto layer = make_layer("{type: dense, units: 2}", {3});
  Tensor w = tensor_of({2, 3}, {1, 2, 3, -1, 0, 1}), b = tensor_of({2}, {0.5f, -2});
  Tensor gw({2, 3}), gb({2});
  layer->bind({w, b}, {gw, gb});
  Tensor x = tensor_of({2, 3}, {1, 1, 1, 2, 0, -1}), y({2, 2});
  layer->forward(x, y, {});
  expect_near_all(y, {6.5, -2, -0.5, -5}, 1e-6, "y");
  Tensor dy = tensor_of({2, 2}, {1, 0, 0, 1}), dx({2, 3});
  layer->backward(x, y, dy, &dx, {});
  expect_near_all(dx, {1, 2, 3, -1, 0, 1}, 1e-6, "dx");
  expect_near_all(gw, {1, 1, 1, 2, 0, -1}, 1e-6, "dweight");
  expect_near_all(gb, {1, 1}, 1e-6, "dbias");
}

TEST(Dense, RejectsEmptyInput) {
  const std::string scalar = input_shape_error("{type: dense, units: 3}", {});
  EXPECT_NE(scalar.find("at least one dimension"), std::string::npos) << scalar;
  const std::string empty = input_shape_error("{type: dense, units: 3}", {0, 4});
  EXPECT_NE(empty.find("has no elements"), std::string::npos) << empty;
}

}  // namespace
}  // namespace dptrain::testing
