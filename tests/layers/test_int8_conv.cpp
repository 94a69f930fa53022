// Int8 inference (dptrain quantize): the int8 convolution computes the convolution of the rounded
// input and weights (checked against a float64 convolution of those same rounded values, which
// follows the geometry independently), oneDNN's kernels give the portable reference's results, and
// conv2d and dense layers switched to int8 stay close to their float32 forward and refuse training.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "layers/cpu/int8_conv.h"
#include "runtime/core/errors.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::make_layer;
using testing::random_tensor;

struct Int8Case {
  const char* name;
  ConvShape shape;
};

ConvShape conv_shape(size_t c, size_t h, size_t w, size_t cout, size_t k, size_t stride, size_t pad, size_t dil,
                         size_t groups) {
  ConvShape s;
  s.in_channels = c, s.height = h, s.width = w, s.out_channels = cout, s.kernel = k, s.stride = stride;
  s.padding = pad, s.dilation = dil, s.groups = groups;
  s.out_height = (h + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  s.out_width = (w + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  return s;
}

std::vector<Int8Case> int8_cases() {
  ConvShape dense;  // a dense layer: 1x1 over (F, 1, 1)
  dense.in_channels = 40, dense.out_channels = 7;
  return {{"3x3 same", conv_shape(5, 9, 8, 6, 3, 1, 1, 1, 1)},
          {"3x3 stride 2", conv_shape(4, 11, 10, 8, 3, 2, 1, 1, 1)},
          {"grouped", conv_shape(6, 7, 7, 9, 3, 1, 1, 1, 3)},
          {"dilated, unpadded", conv_shape(3, 12, 9, 4, 3, 1, 0, 2, 1)},
          {"1x1", conv_shape(16, 5, 5, 12, 1, 1, 0, 1, 1)},
          {"dense", dense}};
}

// Weights drawn from `key` and their per-channel scales (int8_weight_scales).
struct RandomWeights {
  std::vector<float> values, scales;
};

RandomWeights random_weights(const ConvShape& s, uint64_t key) {
  const size_t per_channel = s.in_channels / s.groups * s.kernel * s.kernel;
  const Tensor w = random_tensor({s.out_channels, per_channel}, key);
  return {std::vector<float>(w.data(), w.data() + w.num_elements()),
          int8_weight_scales(w.data(), s.out_channels, per_channel)};
}

// Non-negative inputs (a ReLU's output), some beyond `range` (rounded to its end) and some negative
// (rounded to 0).
std::vector<float> relu_inputs(size_t count, float range, uint64_t key) {
  const Tensor x = random_tensor({count}, key);
  std::vector<float> v(x.data(), x.data() + count);
  for (float& e : v) e = std::max(e, -0.1f) * range / 2;
  return v;
}

// The float64 convolution of `x` and `w` (N, C, H, W) and (Cout, C / groups, K, K), plus bias.
std::vector<double> convolve(const ConvShape& s, const std::vector<double>& x, const std::vector<double>& w,
                             const std::vector<float>& bias, size_t n) {
  const size_t gi = s.in_channels / s.groups, go = s.out_channels / s.groups;
  std::vector<double> y(n * s.out_channels * s.out_height * s.out_width);
  for (size_t b = 0; b < n; ++b)
    for (size_t oc = 0; oc < s.out_channels; ++oc)
      for (size_t oh = 0; oh < s.out_height; ++oh)
        for (size_t ow = 0; ow < s.out_width; ++ow) {
          double sum = bias[oc];
          for (size_t ic = 0; ic < gi; ++ic)
            for (size_t kh = 0; kh < s.kernel; ++kh)
              for (size_t kw = 0; kw < s.kernel; ++kw) {
                const long ih = static_cast<long>(oh * s.stride + kh * s.dilation) - static_cast<long>(s.padding);
                const long iw = static_cast<long>(ow * s.stride + kw * s.dilation) - static_cast<long>(s.padding);
                if (ih < 0 || iw < 0 || ih >= static_cast<long>(s.height) || iw >= static_cast<long>(s.width)) continue;
                const size_t c = oc / go * gi + ic;
                sum += x[((b * s.in_channels + c) * s.height + static_cast<size_t>(ih)) * s.width +
                         static_cast<size_t>(iw)] *
                       w[((oc * gi + ic) * s.kernel + kh) * s.kernel + kw];
              }
          y[((b * s.out_channels + oc) * s.out_height + oh) * s.out_width + ow] = sum;
        }
  return y;
}

// max |a - b| / max |b|.
double relative_to_largest(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / scale;
}

TEST(Int8Convolution, ComputesTheConvolutionOfTheRoundedValues) {
  const float range = 3.0f;
  for (const Int8Case& c : int8_cases()) {
    SCOPED_TRACE(c.name);
    const ConvShape& s = c.shape;
    const size_t n = 3, in = n * s.in_channels * s.height * s.width;
    const RandomWeights w = random_weights(s, 11);
    const std::vector<float> x = relu_inputs(in, range, 12);
    const Tensor bias_draw = random_tensor({s.out_channels}, 13);
    const std::vector<float> bias(bias_draw.data(), bias_draw.data() + s.out_channels);
    for (const int levels : {127, 255}) {
      Int8Convolution conv(s, w.values.data(), w.scales, range, Int8Engine::Reference, levels);
      std::vector<float> y(n * s.out_channels * s.out_height * s.out_width);
      conv.forward(x.data(), n, bias.data(), y.data());
      // The rounded values, worked out here: steps of range / levels, clamped to [0, range].
      const double step = static_cast<double>(range) / levels;
      std::vector<double> xq(in), wq(w.values.size());
      for (size_t i = 0; i < in; ++i) xq[i] = std::clamp(std::nearbyint(x[i] / step), 0.0, double(levels)) * step;
      const size_t per_channel = w.values.size() / s.out_channels;
      for (size_t i = 0; i < wq.size(); ++i) {
        const double scale = w.scales[i / per_channel];
        wq[i] = std::clamp(std::nearbyint(w.values[i] / scale), -127.0, 127.0) * scale;
      }
      EXPECT_LT(relative_to_largest(y, convolve(s, xq, wq, bias, n)), 1e-6) << levels << " steps";
      // And the rounding costs little against the float convolution of the values themselves.
      std::vector<double> clipped(in);  // the reference clamps the input to [0, range]
      for (size_t i = 0; i < in; ++i) clipped[i] = std::clamp(static_cast<double>(x[i]), 0.0, double(range));
      EXPECT_LT(relative_to_largest(y, convolve(s, clipped, std::vector<double>(w.values.begin(), w.values.end()),
                                                bias, n)),
                levels == 255 ? 0.02 : 0.03)
          << levels << " steps";
    }
  }
}

TEST(Int8Convolution, OneDnnKernelsGiveTheReferenceResults) {
  if (!int8_has_onednn()) {
    GTEST_SKIP() << "no oneDNN kernels to compare: " << int8_arithmetic();
  }
  const float range = 2.5f;
  for (const Int8Case& c : int8_cases()) {
    SCOPED_TRACE(c.name);
    const ConvShape& s = c.shape;
    const RandomWeights w = random_weights(s, 21);
    const Tensor bias_draw = random_tensor({s.out_channels}, 22);
    for (const size_t n : {1, 4}) {  // a primitive per batch size
      const std::vector<float> x = relu_inputs(n * s.in_channels * s.height * s.width, range, 23 + n);
      Int8Convolution onednn(s, w.values.data(), w.scales, range);
      Int8Convolution reference(s, w.values.data(), w.scales, range, Int8Engine::Reference, int8_input_levels());
      std::vector<float> a(n * s.out_channels * s.out_height * s.out_width), b(a.size());
      onednn.forward(x.data(), n, bias_draw.data(), a.data());
      reference.forward(x.data(), n, bias_draw.data(), b.data());
      EXPECT_LT(relative_to_largest(a, std::vector<double>(b.begin(), b.end())), 1e-6)
          << onednn.implementation() << ", " << n << " samples";
      EXPECT_NE(onednn.implementation().find("oneDNN"), std::string::npos) << onednn.implementation();
    }
  }
}

TEST(Int8Convolution, RefusesScalesThatDoNotFitTheWeight) {
  const ConvShape s = conv_shape(2, 4, 4, 3, 3, 1, 1, 1, 1);
  const std::vector<float> w(3 * 2 * 9, 0.5f);
  EXPECT_THROW(Int8Convolution(s, w.data(), {1.0f, 1.0f}, 1.0f), ShapeError);
  EXPECT_THROW(Int8Convolution(s, w.data(), {1.0f, 0.0f, 1.0f}, 1.0f), ShapeError);
  EXPECT_THROW(Int8Convolution(s, w.data(), {1.0f, 1.0f, 1.0f}, 0.0f), ShapeError);
}

// A conv2d or dense layer switched to int8: close to its float32 forward, and no training.
void check_int8_layer(const std::string& yaml, const Shape& input_shape) {
  SCOPED_TRACE(yaml);
  const auto layer = make_layer(yaml, input_shape);
  std::vector<Tensor> params, grads;
  Shape out_shape = layer->output_shape();
  for (const ParamSpec& p : layer->parameters()) {
    params.push_back(random_tensor(p.shape, params.size() + 31));
    grads.emplace_back(p.shape);
  }
  layer->bind(params, grads);
  const size_t n = 4;
  Shape x_shape = input_shape;
  x_shape.insert(x_shape.begin(), n);
  Tensor x = random_tensor(x_shape, 41);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = std::max(x.data()[i], 0.0f);  // after a ReLU
  out_shape.insert(out_shape.begin(), n);
  Tensor float_y(out_shape), int8_y(out_shape);
  StepInfo eval;
  eval.mode = Mode::Eval;
  layer->forward(x, float_y, eval);
  EXPECT_EQ(layer->int8_implementation(), "");

  const Tensor& w = params[0];
  const size_t channels = w.shape()[0], per_channel = w.num_elements() / channels;
  Int8Weights int8;
  int8.scales = int8_weight_scales(w.data(), channels, per_channel);
  int8.input_range = *std::max_element(x.data(), x.data() + x.num_elements());
  layer->use_int8(int8);
  layer->forward(x, int8_y, eval);
  EXPECT_FALSE(layer->int8_implementation().empty());
  const std::vector<double> expected(float_y.data(), float_y.data() + float_y.num_elements());
  const double difference =
      relative_to_largest(std::vector<float>(int8_y.data(), int8_y.data() + int8_y.num_elements()), expected);
  EXPECT_LT(difference, 0.03);
  EXPECT_GT(difference, 0.0);  // it did compute in int8

  StepInfo train;
  train.mode = Mode::Train;
  try {
    layer->forward(x, int8_y, train);
    ADD_FAILURE() << "a training step on an int8 layer went through";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot train"), std::string::npos) << e.what();
  }
}

TEST(Int8Layers, ConvAndDenseComputeCloseToFloatAndRefuseTraining) {
  check_int8_layer("{type: conv2d, out_channels: 6, kernel: 3, padding: 1}", {4, 8, 8});
  check_int8_layer("{type: conv2d, out_channels: 6, kernel: 3, stride: 2, groups: 2, bias: false}", {4, 9, 9});
  check_int8_layer("{type: dense, units: 10}", {48});
}

TEST(Int8Layers, OtherLayersHaveNoInt8Form) {
  const auto relu = make_layer("{type: relu}", {4});
  try {
    relu->use_int8(Int8Weights{{1.0f}, 1.0f});
    ADD_FAILURE() << "relu took int8 weights";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d and dense"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dptrain
