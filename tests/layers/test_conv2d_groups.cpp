// conv2d's groups and dilation: a grouped convolution against one convolution per group, the
// option errors, and a hand-computed dilated case.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "layers/conv2d.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// The ConfigError message building `yaml` on `input_shape` throws; fails the test when none is thrown.
std::string config_error(const std::string& yaml, const Shape& input_shape) {
  try {
    make_layer(yaml, input_shape);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << yaml << " was accepted";
  return "";
}

// Copies channels [first, first + count) of every sample of x (N, C, H, W) into a (N, count, H, W) tensor.
Tensor channels_of(const Tensor& x, size_t first, size_t count) {
  const size_t n = x.shape()[0], c = x.shape()[1], plane = x.shape()[2] * x.shape()[3];
  Tensor out({n, count, x.shape()[2], x.shape()[3]});
  for (size_t s = 0; s < n; ++s) {
    std::copy(x.data() + (s * c + first) * plane, x.data() + (s * c + first + count) * plane,
              out.data() + s * count * plane);
  }
  return out;
}

TEST(Conv2dGroups, EqualsOneConvolutionPerGroup) {
  // 6 input channels, 9 output channels, 3 groups: group g maps inputs 2g..2g+1 to outputs 3g..3g+2.
  const size_t n = 2, groups = 3, cin = 6, cout = 9, gin = cin / groups, gout = cout / groups;
  const std::string options = "kernel: 3, stride: 2, padding: 1, dilation: 2";
  auto grouped = make_layer("{type: conv2d, out_channels: 9, groups: 3, " + options + "}", {cin, 9, 8});
  BoundParams p = bind_fresh_parameters(*grouped, 21);
  ASSERT_EQ(p.params[0].shape(), (Shape{cout, gin, 3, 3}));
  Tensor x = random_tensor(batch_shape(n, grouped->input_shape()), 22);
  Tensor y(batch_shape(n, grouped->output_shape()));
  grouped->forward(x, y, {});

  const size_t weights_per_group = gout * gin * 9;
  for (size_t g = 0; g < groups; ++g) {
    auto single = make_layer("{type: conv2d, out_channels: 3, " + options + "}", {gin, 9, 8});
    ASSERT_EQ(single->output_shape(), (Shape{gout, y.shape()[2], y.shape()[3]}));
    Tensor w({gout, gin, 3, 3}), b({gout}), gw(w.shape()), gb(b.shape());
    std::copy(p.params[0].data() + g * weights_per_group, p.params[0].data() + (g + 1) * weights_per_group, w.data());
    std::copy(p.params[1].data() + g * gout, p.params[1].data() + (g + 1) * gout, b.data());
    single->bind({w, b}, {gw, gb});
    Tensor xg = channels_of(x, g * gin, gin);
    Tensor yg(batch_shape(n, single->output_shape()));
    single->forward(xg, yg, {});
    Tensor expected = channels_of(y, g * gout, gout);
    std::vector<double> values(expected.data(), expected.data() + expected.num_elements());
    expect_near_all(yg, values, 1e-5, ("group " + std::to_string(g)).c_str());
  }
}

TEST(Conv2dGroups, HandComputedDilatedCase) {
  // x = 0..15 as a 4x4 image, 2x2 kernel of ones with dilation 2: each output is the sum of
  // x[i, j] + x[i, j + 2] + x[i + 2, j] + x[i + 2, j + 2].
  auto layer = make_layer("{type: conv2d, out_channels: 1, kernel: 2, dilation: 2, bias: false}", {1, 4, 4});
  ASSERT_EQ(layer->output_shape(), (Shape{1, 2, 2}));
  Tensor w = tensor_of({1, 1, 2, 2}, {1, 1, 1, 1}), gw({1, 1, 2, 2});
  layer->bind({w}, {gw});
  Tensor x({1, 1, 4, 4});
  for (size_t i = 0; i < 16; ++i) x.data()[i] = static_cast<float>(i);
  Tensor y({1, 1, 2, 2});
  layer->forward(x, y, {});
  expect_near_all(y, {20, 24, 36, 40}, 1e-6, "y");
  // dy = 1: pixel (oy + 2 ki, ox + 2 kj) meets exactly one (output, tap) pair, so dx = 1 everywhere.
  Tensor dy = tensor_of({1, 1, 2, 2}, {1, 1, 1, 1}), dx({1, 1, 4, 4});
  layer->backward(x, y, dy, &dx, {});
  expect_near_all(dx, std::vector<double>(16, 1.0), 1e-6, "dx");
  // dweight[ki, kj] = sum of the inputs at (ki * 2 + oy, kj * 2 + ox).
  expect_near_all(gw, {0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15}, 1e-6, "dweight");
}

TEST(Conv2dGroups, GroupsMustDivideBothChannelCounts) {
  const std::string bad_out = config_error("{type: conv2d, out_channels: 5, kernel: 3, groups: 2}", {4, 6, 6});
  EXPECT_NE(bad_out.find("'groups'"), std::string::npos) << bad_out;
  EXPECT_NE(bad_out.find("out_channels (5)"), std::string::npos) << bad_out;
  const std::string bad_in = config_error("{type: conv2d, out_channels: 6, kernel: 3, groups: 2}", {3, 6, 6});
  EXPECT_NE(bad_in.find("'groups'"), std::string::npos) << bad_in;
  EXPECT_NE(bad_in.find("input channels (3)"), std::string::npos) << bad_in;
  const std::string zero = config_error("{type: conv2d, out_channels: 6, kernel: 3, groups: 0}", {3, 6, 6});
  EXPECT_NE(zero.find("'groups'"), std::string::npos) << zero;
  const std::string no_dilation = config_error("{type: conv2d, out_channels: 6, kernel: 3, dilation: 0}", {3, 6, 6});
  EXPECT_NE(no_dilation.find("'dilation'"), std::string::npos) << no_dilation;
}

TEST(Conv2dGroups, DilatedKernelMustFitThePaddedInput) {
  // A 3x3 kernel with dilation 3 spans 7 pixels: too wide for 6, right for 7.
  input_shape_error("{type: conv2d, out_channels: 2, kernel: 3, dilation: 3}", {1, 6, 6});
  EXPECT_EQ(make_layer("{type: conv2d, out_channels: 2, kernel: 3, dilation: 3}", {1, 7, 7})->output_shape(),
            (Shape{2, 1, 1}));
}

TEST(Conv2dGroups, DepthwiseGradientsMatchFiniteDifferences) {
  auto layer = make_layer("{type: conv2d, out_channels: 3, kernel: 3, padding: 1, groups: 3, stride: 2}", {3, 7, 7});
  expect_gradients_match(*layer, 2, 31);
}

}  // namespace
}  // namespace dptrain::testing
