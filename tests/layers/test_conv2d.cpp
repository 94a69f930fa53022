#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "layers/conv2d.h"
#include "layers/cpu/int8_conv.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Direct-loop convolution and its gradients: the reference the GEMM version must match.
struct NaiveConv {
  size_t n, cin, h, w, cout, k, stride, pad, ho, wo;
  size_t dilation = 1, groups = 1;

  bool in_image(std::ptrdiff_t iy, std::ptrdiff_t ix) const {
    return iy >= 0 && ix >= 0 && iy < static_cast<std::ptrdiff_t>(h) && ix < static_cast<std::ptrdiff_t>(w);
  }
  // Calls f(index into x, index into weight, index into y) for every multiply of the convolution.
  template <typename F>
  void each_term(F f) const {
    const size_t group_cin = cin / groups, group_cout = cout / groups;
    for (size_t s = 0; s < n; ++s)
      for (size_t co = 0; co < cout; ++co)
        for (size_t oy = 0; oy < ho; ++oy)
          for (size_t ox = 0; ox < wo; ++ox)
            for (size_t cg = 0; cg < group_cin; ++cg)  // input channel within the group of co
              for (size_t ki = 0; ki < k; ++ki)
                for (size_t kj = 0; kj < k; ++kj) {
                  const size_t ci = co / group_cout * group_cin + cg;
                  const auto iy =
                      static_cast<std::ptrdiff_t>(oy * stride + ki * dilation) - static_cast<std::ptrdiff_t>(pad);
                  const auto ix =
                      static_cast<std::ptrdiff_t>(ox * stride + kj * dilation) - static_cast<std::ptrdiff_t>(pad);
                  if (!in_image(iy, ix)) continue;
                  f(((s * cin + ci) * h + iy) * w + ix, ((co * group_cin + cg) * k + ki) * k + kj,
                    ((s * cout + co) * ho + oy) * wo + ox);
                }
  }
};

struct ConvCase {
  size_t n, cin, h, w, cout, k, stride, pad;
  bool bias;
  size_t dilation = 1, groups = 1;

  size_t span() const { return dilation * (k - 1) + 1; }
};

std::string yaml_of(const ConvCase& c) {
  return "{type: conv2d, out_channels: " + std::to_string(c.cout) + ", kernel: " + std::to_string(c.k) +
         ", stride: " + std::to_string(c.stride) + ", padding: " + std::to_string(c.pad) +
         ", bias: " + (c.bias ? "true" : "false") + ", dilation: " + std::to_string(c.dilation) +
         ", groups: " + std::to_string(c.groups) + "}";
}

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << "batch " << c.n << ", input (" << c.cin << ", " << c.h << ", " << c.w << "), " << yaml_of(c);
}

// Every case runs with both CPU kernels: im2col + BLAS, and oneDNN's (forced, whatever the channel
// count), which a build without oneDNN skips.
class Conv2dCases : public ::testing::TestWithParam<std::tuple<ConvCase, CpuConvolution>> {
 protected:
  // The case's layer with the parameter's kernels.
  std::unique_ptr<Layer> layer_of(const ConvCase& c) {
    const CpuConvolution kernels = std::get<1>(GetParam());
    auto layer = make_layer(yaml_of(c), {c.cin, c.h, c.w}, kernels);
    // Forced oneDNN still runs im2col where oneDNN has no direct kernel for the shape (some groups
    // and dilations); it has them for the blocked shapes.
    if (kernels == CpuConvolution::Im2col) EXPECT_EQ(layer->kernel(), "im2col + BLAS");
    if (kernels == CpuConvolution::OneDnn && c.cin / c.groups >= 8) {
      EXPECT_EQ(layer->kernel().rfind("oneDNN", 0), 0u) << layer->kernel();
    }
    return layer;
  }
  void SetUp() override {
    if (std::get<1>(GetParam()) == CpuConvolution::OneDnn && !int8_has_onednn()) {
      GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev): only the im2col kernels are tested";
    }
  }
};

TEST_P(Conv2dCases, MatchesDirectLoopsForwardAndBackward) {
  const ConvCase c = std::get<0>(GetParam());
  auto layer = layer_of(c);
  const NaiveConv ref{
      c.n,        c.cin,   c.h, c.w, c.cout, c.k, c.stride, c.pad, layer->output_shape()[1], layer->output_shape()[2],
      c.dilation, c.groups};
  // PyTorch's (H + 2p - d * (k - 1) - 1) / s + 1.
  ASSERT_EQ(layer->output_shape(),
            (Shape{c.cout, (c.h + 2 * c.pad - c.span()) / c.stride + 1, (c.w + 2 * c.pad - c.span()) / c.stride + 1}));
  ASSERT_EQ(layer->parameters()[0].shape, (Shape{c.cout, c.cin / c.groups, c.k, c.k}));
  BoundParams p = bind_fresh_parameters(*layer, 5);
  Tensor x = random_tensor(batch_shape(c.n, layer->input_shape()), 1);
  Tensor y(batch_shape(c.n, layer->output_shape()));
  Tensor dy = random_tensor(y.shape(), 2);
  Tensor dx(x.shape());
  layer->forward(x, y, {});
  layer->backward(x, y, dy, &dx, {});

  const float* wt = p.params[0].data();
  const size_t pixels = ref.ho * ref.wo;
  std::vector<double> y_ref(y.num_elements(), 0.0), dx_ref(x.num_elements(), 0.0),
      dw_ref(p.params[0].num_elements(), 0.0);
  if (c.bias) {
    for (size_t i = 0; i < y_ref.size(); ++i) y_ref[i] = p.params[1].data()[(i / pixels) % c.cout];
  }
  ref.each_term([&](size_t xi, size_t wi, size_t yi) {
    y_ref[yi] += static_cast<double>(x.data()[xi]) * wt[wi];
    dx_ref[xi] += static_cast<double>(dy.data()[yi]) * wt[wi];
    dw_ref[wi] += static_cast<double>(dy.data()[yi]) * x.data()[xi];
  });
  expect_near_all(y, y_ref, 1e-4, "y");
  expect_near_all(dx, dx_ref, 1e-4, "dx");
  expect_near_all(p.grads[0], dw_ref, 1e-4, "dweight");
  if (c.bias) {
    std::vector<double> db_ref(c.cout, 0.0);
    for (size_t i = 0; i < dy.num_elements(); ++i) db_ref[(i / pixels) % c.cout] += dy.data()[i];
    expect_near_all(p.grads[1], db_ref, 1e-4, "dbias");
  }
}

TEST_P(Conv2dCases, GradientsMatchFiniteDifferences) {
  const ConvCase c = std::get<0>(GetParam());
  auto layer = layer_of(c);
  expect_gradients_match(*layer, c.n, 11);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2dCases,
                         ::testing::Combine(::testing::Values(ConvCase{2, 3, 6, 6, 4, 3, 1, 1, true},   // "same" 3x3
                                           ConvCase{3, 2, 7, 5, 3, 3, 2, 1, true},   // stride 2, padding, non-square
                                           ConvCase{2, 2, 5, 8, 3, 2, 2, 0, false},  // even kernel, no bias
                                           ConvCase{1, 1, 4, 4, 2, 3, 1, 2, true},   // padding larger than needed
                                           ConvCase{4, 3, 5, 5, 2, 1, 1, 0, true},   // 1x1 pointwise (no im2col)
                                           ConvCase{2, 1, 9, 6, 2, 4, 3, 2, false},  // stride 3
                                           ConvCase{5, 4, 6, 6, 5, 3, 1, 0, true},   // batch 5
                                           ConvCase{2, 4, 6, 6, 6, 3, 1, 1, true, 1, 2},    // 2 groups
                                           ConvCase{2, 6, 7, 5, 3, 3, 2, 1, false, 1, 3},   // 3 groups, stride 2
                                           ConvCase{2, 4, 5, 5, 4, 3, 1, 1, true, 1, 4},    // depthwise
                                           ConvCase{3, 3, 6, 6, 6, 3, 1, 1, true, 1, 3},    // depthwise, multiplier 2
                                           ConvCase{2, 4, 4, 4, 8, 1, 1, 0, true, 1, 2},    // grouped pointwise
                                           ConvCase{2, 2, 9, 8, 3, 3, 1, 2, true, 2},       // dilation 2, "same"
                                           ConvCase{2, 2, 11, 9, 2, 3, 2, 0, false, 3},     // dilation 3, stride 2
                                           ConvCase{2, 2, 8, 8, 3, 2, 1, 1, true, 2},       // even kernel, dilated
                                           ConvCase{2, 4, 9, 9, 4, 3, 1, 2, true, 2, 4},    // dilated depthwise
                                           ConvCase{1, 3, 5, 7, 4, 3, 1, 1, true},          // batch 1, "same", wide
                                           ConvCase{3, 2, 6, 5, 3, 5, 1, 2, false},         // batch 3, "same" 5x5
                                           ConvCase{3, 2, 2, 3, 2, 5, 1, 2, true},          // kernel wider than image
                                           ConvCase{5, 4, 7, 6, 6, 3, 1, 2, true, 2, 2},    // batch 5, dilated, groups
                                           ConvCase{3, 16, 7, 7, 24, 3, 1, 1, true},        // blocked channels
                                           ConvCase{2, 16, 9, 9, 8, 3, 2, 1, false},        // blocked, stride 2
                                           ConvCase{2, 12, 6, 6, 16, 1, 2, 0, true}),       // 1x1 shortcut, stride 2
                                           ::testing::Values(CpuConvolution::Im2col, CpuConvolution::OneDnn)));

TEST(Conv2d, HandComputedCase) {
  // x = [[1 2 3] [4 5 6] [7 8 9]], w = [[1 2] [3 4]], bias 0.5.
  for (const bool padded : {false, true}) {
    auto layer = make_layer(padded ? "{type: conv2d, out_channels: 1, kernel: 2, stride: 2, padding: 1}"
                                   : "{type: conv2d, out_channels: 1, kernel: 2}",
                            {1, 3, 3});
    ASSERT_EQ(layer->output_shape(), (Shape{1, 2, 2}));
    Tensor w = tensor_of({1, 1, 2, 2}, {1, 2, 3, 4}), b = tensor_of({1}, {0.5f});
    Tensor gw({1, 1, 2, 2}), gb({1});
    layer->bind({w, b}, {gw, gb});
    Tensor x = tensor_of({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    Tensor y({1, 1, 2, 2});
    layer->forward(x, y, {});
    if (padded) {
      // Windows over the zero-padded 5x5 image at rows/cols {-1, 0} and {1, 2}.
      expect_near_all(y, {4.5, 18.5, 36.5, 77.5}, 1e-6, "padded");
    } else {
      expect_near_all(y, {37.5, 47.5, 67.5, 77.5}, 1e-6, "valid");
    }
    // dy = 1 everywhere: dbias = 4, dweight[i] = sum of the inputs each weight touched.
    Tensor dy = tensor_of({1, 1, 2, 2}, {1, 1, 1, 1});
    Tensor dx({1, 1, 3, 3});
    layer->backward(x, y, dy, &dx, {});
    EXPECT_FLOAT_EQ(gb.data()[0], 4.0f);
    if (!padded) {
      expect_near_all(gw, {12, 16, 24, 28}, 1e-6, "dweight");
      expect_near_all(dx, {1, 3, 2, 4, 10, 6, 3, 7, 4}, 1e-6, "dx");
    }
  }
}

TEST(Conv2d, SkipsInputGradientForFirstLayer) {
  auto layer = make_layer("{type: conv2d, out_channels: 3, kernel: 3, padding: 1}", {2, 5, 5});
  BoundParams p = bind_fresh_parameters(*layer, 3);
  Tensor x = random_tensor({2, 2, 5, 5}, 4), y({2, 3, 5, 5});
  Tensor dy = random_tensor(y.shape(), 5);
  layer->forward(x, y, {});
  layer->backward(x, y, dy, nullptr, {});
  Tensor with_dx_grad({3, 2, 3, 3});
  std::copy(p.grads[0].data(), p.grads[0].data() + 54, with_dx_grad.data());
  Tensor dx(x.shape());
  layer->backward(x, y, dy, &dx, {});
  for (size_t i = 0; i < 54; ++i) EXPECT_FLOAT_EQ(with_dx_grad.data()[i], p.grads[0].data()[i]);
}

TEST(Conv2d, SampleResultDoesNotDependOnBatchOrThreads) {
  auto layer = make_layer("{type: conv2d, out_channels: 4, kernel: 3, padding: 1}", {3, 8, 8});
  bind_fresh_parameters(*layer, 6);
  Tensor big = random_tensor({6, 3, 8, 8}, 7), y_big({6, 4, 8, 8});
  layer->forward(big, y_big, {});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor one = Tensor::view(big.data() + 4 * 192, {1, 3, 8, 8}), y_one({1, 4, 8, 8});
  layer->forward(one, y_one, {});
  omp_set_num_threads(threads);
  for (size_t i = 0; i < y_one.num_elements(); ++i) ASSERT_EQ(y_one.data()[i], y_big.data()[4 * 256 + i]) << i;
  // Smaller then larger batches again: the reused workspaces give the same answer.
  Tensor y_again({6, 4, 8, 8});
  layer->forward(big, y_again, {});
  for (size_t i = 0; i < y_big.num_elements(); ++i) ASSERT_EQ(y_again.data()[i], y_big.data()[i]) << i;
}

TEST(Conv2d, GradientsDoNotDependOnBatchSplitOrThreads) {
  // Batches that split unevenly over the threads: every sample's input gradient is the one it gets
  // alone on one thread, and the weight gradient is the sum of the samples' own.
  const std::string yaml = "{type: conv2d, out_channels: 4, kernel: 3, padding: 1}";
  for (const size_t n : {1, 2, 3, 5}) {
    auto layer = make_layer(yaml, {3, 6, 7});
    BoundParams p = bind_fresh_parameters(*layer, 8);
    Tensor x = random_tensor({n, 3, 6, 7}, 9), y({n, 4, 6, 7}), dx(x.shape());
    Tensor dy = random_tensor(y.shape(), 10);
    layer->forward(x, y, {});
    layer->backward(x, y, dy, &dx, {});
    const Tensor batch_grad = p.grads[0].to_host();
    std::vector<double> summed(batch_grad.num_elements(), 0.0);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t s = 0; s < n; ++s) {
      Tensor xs = Tensor::view(x.data() + s * 126, {1, 3, 6, 7}), ys({1, 4, 6, 7}), dxs({1, 3, 6, 7});
      Tensor dys = Tensor::view(dy.data() + s * 168, {1, 4, 6, 7});
      layer->forward(xs, ys, {});
      layer->backward(xs, ys, dys, &dxs, {});
      for (size_t i = 0; i < 126; ++i) {
        ASSERT_EQ(dxs.data()[i], dx.data()[s * 126 + i]) << "batch " << n << " sample " << s;
      }
      for (size_t i = 0; i < summed.size(); ++i) summed[i] += p.grads[0].data()[i];
    }
    omp_set_num_threads(threads);
    expect_near_all(batch_grad, summed, 1e-5, ("dweight, batch " + std::to_string(n)).c_str());
  }
}

TEST(Conv2d, HeUniformInitialisation) {
  auto layer = make_layer("{type: conv2d, out_channels: 64, kernel: 3, init: he_uniform}", {32, 5, 5});
  std::vector<Tensor> params, grads;
  for (const auto& spec : layer->parameters()) params.emplace_back(spec.shape), grads.emplace_back(spec.shape);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].shape(), (Shape{64, 32, 3, 3}));
  EXPECT_EQ(params[1].shape(), (Shape{64}));
  params[1].fill(7.0f);
  layer->bind(params, grads);
  Rng rng(123);
  layer->init_parameters(rng);
  const double bound = std::sqrt(6.0 / (32 * 9));
  double sum_sq = 0;
  for (size_t i = 0; i < params[0].num_elements(); ++i) {
    const float v = params[0].data()[i];
    ASSERT_LE(std::fabs(v), bound);
    sum_sq += v * v;
  }
  // The variance of U(-b, b) is b^2 / 3 = 2 / fan_in.
  EXPECT_NEAR(sum_sq / params[0].num_elements(), 2.0 / (32 * 9), 0.05 * 2.0 / (32 * 9));
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(params[1].data()[i], 0.0f);
  // Drawn from the given Rng only: the same key gives the same weights.
  Tensor first({64, 32, 3, 3});
  std::copy(params[0].data(), params[0].data() + first.num_elements(), first.data());
  Rng again(123);
  layer->init_parameters(again);
  for (size_t i = 0; i < first.num_elements(); ++i) ASSERT_EQ(first.data()[i], params[0].data()[i]);
}

TEST(Conv2d, NoBiasHasOnlyWeight) {
  auto layer = make_layer("{type: conv2d, out_channels: 2, kernel: 1, bias: false}", {3, 2, 2});
  ASSERT_EQ(layer->parameters().size(), 1u);
  EXPECT_EQ(layer->parameters()[0].name, "weight");
}

TEST(Conv2d, RejectsInputsItCannotTake) {
  const std::string flat = input_shape_error("{type: conv2d, out_channels: 4, kernel: 3}", {16});
  EXPECT_NE(flat.find("(channels, height, width)"), std::string::npos) << flat;
  const std::string big = input_shape_error("{type: conv2d, out_channels: 4, kernel: 5, padding: 1}", {1, 2, 8});
  EXPECT_NE(big.find("larger than the padded height"), std::string::npos) << big;
  EXPECT_EQ(make_layer("{type: conv2d, out_channels: 4, kernel: 5, padding: 1}", {1, 3, 8})->output_shape(),
            (Shape{4, 1, 6}));
}

TEST(Conv2d, ForwardRejectsWrongTensorShapes) {
  auto layer = make_layer("{type: conv2d, out_channels: 2, kernel: 3}", {1, 5, 5});
  bind_fresh_parameters(*layer, 1);
  Tensor x({2, 1, 5, 5}), wrong_y({2, 2, 4, 4}), wrong_x({2, 1, 5, 4}), y({2, 2, 3, 3});
  EXPECT_THROW(layer->forward(x, wrong_y, {}), ShapeError);
  EXPECT_THROW(layer->forward(wrong_x, y, {}), ShapeError);
}

}  // namespace
}  // namespace dptrain::testing
