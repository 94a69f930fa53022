// im2col / col2im: unfold an image into the column matrix a convolution GEMM multiplies.
#pragma once

#include <cstddef>

namespace dptrain {

// Geometry of one sample (or one channel group of it) of a 2-D convolution with a square kernel.
struct ConvGeometry {
  size_t channels = 0, height = 0, width = 0;  // input (C, H, W)
  size_t kernel = 0, stride = 1, padding = 0;
  size_t out_height = 0, out_width = 0;  // output (Ho, Wo)
  size_t dilation = 1;                   // spacing between kernel taps

  size_t padded_height() const { return height + 2 * padding; }
  size_t padded_width() const { return width + 2 * padding; }
  size_t padded_size() const { return channels * padded_height() * padded_width(); }
  size_t col_rows() const { return channels * kernel * kernel; }
  size_t col_cols() const { return out_height * out_width; }
  // A 1x1, stride-1, unpadded convolution: the image already is its column matrix.
  bool is_pointwise() const { return kernel == 1 && stride == 1 && padding == 0; }
  // A stride-1 convolution whose output is as large as its input ("same" padding): every row of
  // the column matrix is then the image plane shifted by one constant offset.
  bool is_same_size() const { return stride == 1 && out_height == height && out_width == width; }
  size_t image_size() const { return channels * height * width; }
};

// Copies x (C, H, W) into the interior of padded (C, H + 2p, W + 2p). Only the interior is
// written: the caller keeps the border zero.
void pad_image(const float* x, const ConvGeometry& g, float* padded);

// padded (C, H + 2p, W + 2p) -> col (C * K * K, Ho * Wo): row (c, ki, kj), column (oy, ox) holds
// padded[c, oy * stride + ki * dilation, ox * stride + kj * dilation]. Without padding, `padded` is
// the image itself.
// Working on a padded copy keeps bounds checks out of the inner loops, which are short row copies.
void im2col(const float* padded, const ConvGeometry& g, float* col);

// The same col as im2col for a same-size geometry, read straight from the unpadded x (C, H, W):
// each row is one copy of the shifted plane with the entries that fall outside the image zeroed.
void im2col_same_size(const float* x, const ConvGeometry& g, float* col);

// The adjoint of im2col on the unpadded image: adds every entry of col (C * K * K, Ho * Wo) that
// came from inside the image into its x (C, H, W) entry. x is accumulated into, not overwritten.
// col is scratch: its entries that lie outside the image may be zeroed. A same-size geometry adds
// each row of col as one shifted plane; any other adds row by row.
void col2im_add(float* col, const ConvGeometry& g, float* x);

}  // namespace dptrain
