// The geometry of one CPU convolution, as the oneDNN-backed kernels (float32 and int8) take it.
#pragma once

#include <cstddef>

namespace dptrain {

// A convolution over NCHW batches; a dense layer is a 1x1 convolution over (F, 1, 1).
struct ConvShape {
  size_t in_channels = 0, height = 1, width = 1;  // input (C, H, W)
  size_t out_channels = 0, kernel = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
  size_t out_height = 1, out_width = 1;  // output (Ho, Wo)
};

}  // namespace dptrain
