#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

struct PoolCase {
  size_t n, c, h, w, k, stride, pad;
};

std::string yaml_of(const char* type, const PoolCase& p) {
  return std::string("{type: ") + type + ", kernel: " + std::to_string(p.k) + ", stride: " + std::to_string(p.stride) +
         ", padding: " + std::to_string(p.pad) + "}";
}

// Direct-loop pooling forward and backward: max pads with -inf (first maximum wins), average
// divides by the number of in-image elements of each window.
void reference_pool(bool is_max, const PoolCase& p, size_t ho, size_t wo, const Tensor& x, const Tensor& dy,
                    std::vector<double>& y, std::vector<double>& dx) {
  y.assign(p.n * p.c * ho * wo, 0.0);
  dx.assign(x.num_elements(), 0.0);
  for (size_t plane = 0; plane < p.n * p.c; ++plane) {
    for (size_t oy = 0; oy < ho; ++oy) {
      for (size_t ox = 0; ox < wo; ++ox) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        size_t best_at = 0, count = 0;
        std::vector<size_t> members;
        for (size_t ki = 0; ki < p.k; ++ki) {
          for (size_t kj = 0; kj < p.k; ++kj) {
            const auto iy = static_cast<std::ptrdiff_t>(oy * p.stride + ki) - static_cast<std::ptrdiff_t>(p.pad);
            const auto ix = static_cast<std::ptrdiff_t>(ox * p.stride + kj) - static_cast<std::ptrdiff_t>(p.pad);
            if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(p.h) || ix >= static_cast<std::ptrdiff_t>(p.w))
              continue;
            const size_t at = plane * p.h * p.w + iy * p.w + ix;
            members.push_back(at);
            sum += x.data()[at];
            ++count;
            if (x.data()[at] > best) best = x.data()[at], best_at = at;
          }
        }
        const size_t o = (plane * ho + oy) * wo + ox;
        y[o] = is_max ? best : sum / count;
        if (is_max) {
          dx[best_at] += dy.data()[o];
        } else {
          for (size_t at : members) dx[at] += dy.data()[o] / count;
        }
      }
    }
  }
}

void PrintTo(const PoolCase& p, std::ostream* os) {
  *os << "batch " << p.n << ", input (" << p.c << ", " << p.h << ", " << p.w << "), kernel " << p.k << ", stride "
      << p.stride << ", padding " << p.pad;
}

class PoolCases : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolCases, MatchDirectLoops) {
  const PoolCase p = GetParam();
  for (const bool is_max : {true, false}) {
    auto layer = make_layer(yaml_of(is_max ? "max_pool2d" : "avg_pool2d", p), {p.c, p.h, p.w});
    const size_t ho = (p.h + 2 * p.pad - p.k) / p.stride + 1, wo = (p.w + 2 * p.pad - p.k) / p.stride + 1;
    ASSERT_EQ(layer->output_shape(), (Shape{p.c, ho, wo}));
    Tensor x = random_tensor({p.n, p.c, p.h, p.w}, 31), y({p.n, p.c, ho, wo});
    Tensor dy = random_tensor(y.shape(), 32), dx(x.shape());
    dx.fill(42.0f);  // backward must overwrite, not add
    layer->forward(x, y, {});
    layer->backward(x, y, dy, &dx, {});
    std::vector<double> y_ref, dx_ref;
    reference_pool(is_max, p, ho, wo, x, dy, y_ref, dx_ref);
    expect_near_all(y, y_ref, 1e-5, is_max ? "max y" : "avg y");
    expect_near_all(dx, dx_ref, 1e-5, is_max ? "max dx" : "avg dx");
  }
}

TEST_P(PoolCases, GradientsMatchFiniteDifferences) {
  const PoolCase p = GetParam();
  auto avg = make_layer(yaml_of("avg_pool2d", p), {p.c, p.h, p.w});
  expect_gradients_match(*avg, p.n, 41);
  // A small step, so that no window's maximum changes hands within it.
  auto max = make_layer(yaml_of("max_pool2d", p), {p.c, p.h, p.w});
  GradCheckOptions opt;
  opt.eps = 1e-4;
  expect_gradients_match(*max, p.n, 42, opt);
}

// Whether two float tensors hold the same bits, naming the first few elements that differ.
void expect_same_bits(const Tensor& actual, const Tensor& expected, const char* what) {
  ASSERT_EQ(actual.num_elements(), expected.num_elements()) << what;
  size_t differ = 0;
  for (size_t i = 0; i < expected.num_elements(); ++i) {
    if (std::memcmp(actual.data() + i, expected.data() + i, sizeof(float)) != 0 && differ++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << actual.data()[i] << ", expected " << expected.data()[i];
    }
  }
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " elements differ";
}

// A max_pool2d that absorbed the relu before it computes, from the relu's input, the bits that the
// relu and the pool compute one after the other: outputs, input gradients, every geometry, with
// all-negative windows (output 0, no gradient), ties, -0, NaN and infinities in the input.
TEST_P(PoolCases, AbsorbedReluMatchesReluThenMaxPoolBitForBit) {
  const PoolCase p = GetParam();
  auto relu = make_layer("{type: relu}", {p.c, p.h, p.w});
  auto apart = make_layer(yaml_of("max_pool2d", p), {p.c, p.h, p.w});
  auto fused = make_layer(yaml_of("max_pool2d", p), {p.c, p.h, p.w});
  EXPECT_FALSE(fused->absorbs_input_relu());
  ASSERT_TRUE(fused->absorb_input_relu());
  EXPECT_TRUE(fused->absorbs_input_relu());
  EXPECT_FALSE(apart->absorbs_input_relu());

  Tensor x = random_tensor({p.n, p.c, p.h, p.w}, 51);
  const float specials[] = {-0.0f, 0.0f, std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i < x.num_elements(); i += 7) x.data()[i] = specials[(i / 7) % 5];
  for (size_t i = 3; i + 1 < x.num_elements(); i += 11) x.data()[i + 1] = x.data()[i];  // ties
  // The first window of the first plane without a positive element.
  for (size_t r = 0; r < std::min(p.k, p.h); ++r) {
    for (size_t c = 0; c < std::min(p.k, p.w); ++c) x.data()[r * p.w + c] = -std::fabs(x.data()[r * p.w + c]) - 0.5f;
  }
  const Shape out = batch_shape(p.n, apart->output_shape());
  Tensor relu_y(x.shape()), y_apart(out), y_fused(out);
  relu->forward(x, relu_y, {});
  apart->forward(relu_y, y_apart, {});
  fused->forward(x, y_fused, {});
  expect_same_bits(y_fused, y_apart, "y");
  size_t zero_windows = 0;
  for (size_t i = 0; i < y_apart.num_elements(); ++i) zero_windows += y_apart.data()[i] == 0.0f ? 1 : 0;
  EXPECT_GT(zero_windows, 0u) << "no window without a positive element: the masked path went untested";

  Tensor dy = random_tensor(out, 52), relu_dy(x.shape()), dx_apart(x.shape()), dx_fused(x.shape());
  dx_fused.fill(42.0f);  // backward must overwrite, not add
  apart->backward(relu_y, y_apart, dy, &relu_dy, {});
  relu->backward(x, relu_y, relu_dy, &dx_apart, {});
  fused->backward(x, y_fused, dy, &dx_fused, {});
  expect_same_bits(dx_fused, dx_apart, "dx");
}

TEST_P(PoolCases, AbsorbedReluGradientsMatchFiniteDifferences) {
  const PoolCase p = GetParam();
  auto fused = make_layer(yaml_of("max_pool2d", p), {p.c, p.h, p.w});
  ASSERT_TRUE(fused->absorb_input_relu());
  // Inputs kept away from relu's kink, and a small step, so that no window's maximum changes hands.
  GradCheckOptions opt;
  opt.eps = 1e-4;
  opt.min_abs_input = 0.05f;
  expect_gradients_match(*fused, p.n, 43, opt);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolCases,
                         ::testing::Values(PoolCase{2, 3, 8, 8, 2, 2, 0},    // the common 2x2 case
                                           PoolCase{2, 2, 7, 5, 2, 2, 0},    // odd sizes: last row dropped
                                           PoolCase{1, 2, 7, 7, 3, 2, 1},    // overlapping, padded
                                           PoolCase{3, 1, 6, 9, 3, 1, 1},    // stride 1, non-square
                                           PoolCase{2, 2, 5, 6, 2, 1, 1},    // padding with even kernel
                                           PoolCase{1, 1, 9, 4, 4, 3, 2}));  // stride 3, padding 2

TEST(Pooling, HandComputedCases) {
  Tensor x16({1, 1, 4, 4});
  for (size_t i = 0; i < 16; ++i) x16.data()[i] = static_cast<float>(i);
  Tensor y({1, 1, 2, 2});
  make_layer("{type: max_pool2d, kernel: 2}", {1, 4, 4})->forward(x16, y, {});
  expect_near_all(y, {5, 7, 13, 15}, 0, "max 2x2");
  make_layer("{type: avg_pool2d, kernel: 2}", {1, 4, 4})->forward(x16, y, {});
  expect_near_all(y, {2.5, 4.5, 10.5, 12.5}, 0, "avg 2x2");

  // 3x3 image 1..9, kernel 2, stride 2, padding 1: windows {1}, {2,3}, {4,7}, {5,6,8,9}.
  Tensor x9 = tensor_of({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto avg = make_layer("{type: avg_pool2d, kernel: 2, stride: 2, padding: 1}", {1, 3, 3});
  avg->forward(x9, y, {});
  expect_near_all(y, {1, 2.5, 5.5, 7}, 1e-6, "avg padded");
  auto max = make_layer("{type: max_pool2d, kernel: 2, stride: 2, padding: 1}", {1, 3, 3});
  Tensor negative = tensor_of({1, 1, 3, 3}, {-1, -2, -3, -4, -5, -6, -7, -8, -9});
  max->forward(negative, y, {});
  expect_near_all(y, {-1, -2, -4, -5}, 1e-6, "max padded (padding is -inf, not 0)");
  Tensor dy = tensor_of({1, 1, 2, 2}, {1, 2, 3, 4}), dx({1, 1, 3, 3});
  max->backward(negative, y, dy, &dx, {});
  expect_near_all(dx, {1, 2, 0, 3, 4, 0, 0, 0, 0}, 0, "max dx");
  avg->forward(x9, y, {});
  avg->backward(x9, y, dy, &dx, {});
  expect_near_all(dx, {1, 1, 1, 1.5, 1, 1, 1.5, 1, 1}, 1e-6, "avg dx");
}

TEST(Pooling, MaxBackwardUsesArgmaxFromForwardAndFirstOnTies) {
  auto layer = make_layer("{type: max_pool2d, kernel: 2}", {1, 2, 2});
  Tensor ties = tensor_of({1, 1, 2, 2}, {3, 3, 3, 3}), y({1, 1, 1, 1});
  layer->forward(ties, y, {});
  Tensor dy = tensor_of({1, 1, 1, 1}, {5}), dx({1, 1, 2, 2});
  layer->backward(ties, y, dy, &dx, {});
  expect_near_all(dx, {5, 0, 0, 0}, 0, "tie goes to the first element");
  Tensor x = tensor_of({1, 1, 2, 2}, {0, 1, 9, 2});
  layer->forward(x, y, {});
  layer->backward(x, y, dy, &dx, {});
  expect_near_all(dx, {0, 0, 5, 0}, 0, "argmax");
  // A backward for a different batch than the last forward is refused.
  Tensor x2({2, 1, 2, 2}), y2({2, 1, 1, 1}), dy2({2, 1, 1, 1}), dx2({2, 1, 2, 2});
  EXPECT_THROW(layer->backward(x2, y2, dy2, &dx2, {}), ShapeError);
}

TEST(Pooling, StrideDefaultsToKernel) {
  EXPECT_EQ(make_layer("{type: max_pool2d, kernel: 3}", {4, 9, 10})->output_shape(), (Shape{4, 3, 3}));
  EXPECT_EQ(make_layer("{type: avg_pool2d, kernel: 2, stride: 1}", {4, 9, 10})->output_shape(), (Shape{4, 8, 9}));
}

TEST(Pooling, RejectsBadOptionsAndShapes) {
  for (const char* type : {"max_pool2d", "avg_pool2d"}) {
    const std::string t = type;
    EXPECT_THROW(make_layer("{type: " + t + ", kernel: 0}", {1, 4, 4}), ConfigError);
    EXPECT_THROW(make_layer("{type: " + t + ", kernel: 2, stride: 0}", {1, 4, 4}), ConfigError);
    EXPECT_THROW(make_layer("{type: " + t + ", kernel: 3, padding: 2}", {1, 4, 4}), ConfigError);
    EXPECT_THROW(make_layer("{type: " + t + "}", {1, 4, 4}), ConfigError);
    const std::string flat = input_shape_error("{type: " + t + ", kernel: 2}", {4, 4});
    EXPECT_NE(flat.find(t + " needs a (channels, height, width) input"), std::string::npos) << flat;
    const std::string large = input_shape_error("{type: " + t + ", kernel: 5}", {1, 4, 8});
    EXPECT_NE(large.find("larger than the padded height"), std::string::npos) << large;
  }
}

}  // namespace
}  // namespace dptrain::testing
