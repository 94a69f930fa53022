// oneDNN's descriptions of a ConvShape: the dimensions its convolution descriptors take. For the
// files built with oneDNN (DPTRAIN_HAVE_ONEDNN) only.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "layers/cpu/conv_shape.h"

namespace dptrain {

struct OneDnnConvDims {
  dnnl::memory::dims src, dst, weights;  // (n, C, H, W), (n, Cout, Ho, Wo), (Cout, C, K, K) or (g, Cout/g, C/g, K, K)
  dnnl::memory::dims strides, padding, dilation;  // dilation as oneDNN counts it: the gaps, dilation - 1
  bool grouped = false;                           // weights are goihw rather than oihw
};

inline OneDnnConvDims onednn_conv_dims(const ConvShape& s, size_t n) {
  const auto dim = [](size_t v) { return static_cast<dnnl::memory::dim>(v); };
  OneDnnConvDims d;
  d.src = {dim(n), dim(s.in_channels), dim(s.height), dim(s.width)};
  d.dst = {dim(n), dim(s.out_channels), dim(s.out_height), dim(s.out_width)};
  d.grouped = s.groups != 1;
  d.weights = d.grouped ? dnnl::memory::dims{dim(s.groups), dim(s.out_channels / s.groups),
                                             dim(s.in_channels / s.groups), dim(s.kernel), dim(s.kernel)}
                        : dnnl::memory::dims{dim(s.out_channels), dim(s.in_channels), dim(s.kernel), dim(s.kernel)};
  d.strides = {dim(s.stride), dim(s.stride)};
  d.padding = {dim(s.padding), dim(s.padding)};
  d.dilation = {dim(s.dilation - 1), dim(s.dilation - 1)};
  return d;
}

}  // namespace dptrain
