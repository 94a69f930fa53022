// im2col and col2im against direct loops: the same-size shifted-plane paths equal the padded
// row-by-row ones for kernels, dilations, non-square and tiny images, and col2im is im2col's adjoint.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <ostream>
#include <vector>

#include "layers/cpu/im2col.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// One geometry to check: input (C, H, W), square kernel, stride, padding, dilation.
struct Im2colCase {
  size_t channels, height, width, kernel, stride, padding, dilation;

  ConvGeometry geometry() const {
    const size_t span = dilation * (kernel - 1) + 1;
    const size_t out_height = (height + 2 * padding - span) / stride + 1;
    const size_t out_width = (width + 2 * padding - span) / stride + 1;
    return {channels, height, width, kernel, stride, padding, out_height, out_width, dilation};
  }
};

void PrintTo(const Im2colCase& c, std::ostream* os) {
  *os << "input (" << c.channels << ", " << c.height << ", " << c.width << "), kernel " << c.kernel << ", stride "
      << c.stride << ", padding " << c.padding << ", dilation " << c.dilation;
}

// Calls f(index into x, index into col) for every column-matrix entry that lies inside the image.
template <typename F>
void each_inside(const ConvGeometry& g, F f) {
  const size_t k = g.kernel, pixels = g.col_cols();
  for (size_t c = 0; c < g.channels; ++c)
    for (size_t ki = 0; ki < k; ++ki)
      for (size_t kj = 0; kj < k; ++kj)
        for (size_t oy = 0; oy < g.out_height; ++oy)
          for (size_t ox = 0; ox < g.out_width; ++ox) {
            const auto iy = static_cast<std::ptrdiff_t>(oy * g.stride + ki * g.dilation - g.padding);
            const auto ix = static_cast<std::ptrdiff_t>(ox * g.stride + kj * g.dilation - g.padding);
            if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(g.height) ||
                ix >= static_cast<std::ptrdiff_t>(g.width)) {
              continue;
            }
            f((c * g.height + iy) * g.width + ix, ((c * k + ki) * k + kj) * pixels + oy * g.out_width + ox);
          }
}

// im2col by direct loops: zero, then every inside entry copied from x.
std::vector<float> reference_im2col(const ConvGeometry& g, const Tensor& x) {
  std::vector<float> col(g.col_rows() * g.col_cols(), 0.0f);
  each_inside(g, [&](size_t xi, size_t ci) { col[ci] = x.data()[xi]; });
  return col;
}

// im2col of the unpadded x through a zero-bordered copy, as conv2d unfolds other geometries.
std::vector<float> padded_im2col(const ConvGeometry& g, const Tensor& x) {
  const size_t hp = g.height + 2 * g.padding, wp = g.width + 2 * g.padding;
  std::vector<float> padded(g.channels * hp * wp, 0.0f), col(g.col_rows() * g.col_cols(), -1.0f);
  pad_image(x.data(), g, padded.data());
  im2col(g.padding ? padded.data() : x.data(), g, col.data());
  return col;
}

class Im2colCases : public ::testing::TestWithParam<Im2colCase> {};

TEST_P(Im2colCases, SameSizeUnfoldEqualsDirectLoops) {
  const ConvGeometry g = GetParam().geometry();
  if (!g.is_same_size()) GTEST_SKIP() << "not a same-size geometry";
  const Tensor x = random_tensor({g.channels, g.height, g.width}, 31);
  std::vector<float> col(g.col_rows() * g.col_cols(), -1.0f);  // stale values must all be overwritten
  im2col_same_size(x.data(), g, col.data());
  EXPECT_EQ(col, reference_im2col(g, x));
}

TEST_P(Im2colCases, PaddedUnfoldEqualsDirectLoops) {
  const ConvGeometry g = GetParam().geometry();
  const Tensor x = random_tensor({g.channels, g.height, g.width}, 32);
  EXPECT_EQ(padded_im2col(g, x), reference_im2col(g, x));
}

TEST_P(Im2colCases, FoldEqualsDirectLoopsAndAccumulates) {
  const ConvGeometry g = GetParam().geometry();
  const Tensor col = random_tensor({g.col_rows(), g.col_cols()}, 33);
  const Tensor start = random_tensor({g.channels, g.height, g.width}, 34);
  std::vector<double> expected(start.data(), start.data() + start.num_elements());
  each_inside(g, [&](size_t xi, size_t ci) { expected[xi] += col.data()[ci]; });
  std::vector<float> scratch(col.data(), col.data() + col.num_elements());
  std::vector<float> x(start.data(), start.data() + start.num_elements());
  col2im_add(scratch.data(), g, x.data());
  expect_near_all(Tensor::view(x.data(), start.shape()), expected, 1e-6, "x");
  // The scratch column matrix may lose its outside entries only.
  each_inside(g, [&](size_t, size_t ci) { ASSERT_EQ(scratch[ci], col.data()[ci]) << ci; });
}

TEST_P(Im2colCases, FoldIsTheAdjointOfUnfold) {
  // <im2col(x), col> = <x, col2im(col)>.
  const ConvGeometry g = GetParam().geometry();
  const Tensor x = random_tensor({g.channels, g.height, g.width}, 35);
  const Tensor col = random_tensor({g.col_rows(), g.col_cols()}, 36);
  const std::vector<float> unfolded = reference_im2col(g, x);
  Tensor folded({g.channels, g.height, g.width});
  std::vector<float> scratch(col.data(), col.data() + col.num_elements());
  col2im_add(scratch.data(), g, folded.data());
  double left = 0, right = 0;
  for (size_t i = 0; i < unfolded.size(); ++i) left += static_cast<double>(unfolded[i]) * col.data()[i];
  for (size_t i = 0; i < x.num_elements(); ++i) right += static_cast<double>(x.data()[i]) * folded.data()[i];
  EXPECT_NEAR(left, right, 1e-4 * (1 + std::abs(left)));
}

INSTANTIATE_TEST_SUITE_P(Geometries, Im2colCases,
                         ::testing::Values(Im2colCase{2, 6, 6, 3, 1, 1, 1},     // "same" 3x3
                                           Im2colCase{3, 5, 9, 3, 1, 1, 1},     // "same", wide
                                           Im2colCase{2, 9, 4, 5, 1, 2, 1},     // "same" 5x5, tall
                                           Im2colCase{2, 7, 6, 3, 1, 2, 2},     // "same", dilation 2
                                           Im2colCase{1, 8, 8, 3, 1, 3, 3},     // "same", dilation 3
                                           Im2colCase{2, 1, 1, 3, 1, 1, 1},     // 1x1 image, every tap but one outside
                                           Im2colCase{1, 2, 3, 5, 1, 2, 1},     // kernel wider than the image
                                           Im2colCase{3, 4, 5, 1, 1, 0, 1},     // 1x1 kernel
                                           Im2colCase{2, 7, 5, 3, 2, 1, 1},     // stride 2: row by row
                                           Im2colCase{2, 6, 6, 3, 1, 0, 1},     // no padding, smaller output
                                           Im2colCase{1, 5, 5, 3, 1, 2, 1},     // padding beyond "same"
                                           Im2colCase{2, 11, 9, 3, 2, 0, 3}));  // dilation 3, stride 2

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain::testing
