// Pool2dLayer: what max_pool2d and avg_pool2d share: options, window geometry and shapes.
#pragma once

#include <cstddef>

#include "layers/layer.h"
#include "runtime/core/config_map.h"

namespace dptrain {

// YAML options of `max_pool2d` and `avg_pool2d`.
struct Pool2dOptions {
  size_t kernel = 0;   // `kernel`, required, >= 1: a square kernel x kernel window
  size_t stride = 0;   // `stride`, >= 1, default = kernel
  size_t padding = 0;  // `padding`, at most kernel / 2 (as in PyTorch), so every window meets the input

  static Pool2dOptions read(ConfigMap& options);
};

// Window geometry of one pooling layer: input (C, H, W), output (C, Ho, Wo) with
// Ho = (H + 2 * padding - kernel) / stride + 1 (floor mode; windows hanging off the end are dropped).
class Pool2dLayer : public Layer {
 public:
  Pool2dLayer(const Pool2dOptions& options, const Shape& input_shape, const char* type_name);

  const Pool2dOptions& options() const { return options_; }

 protected:
  // The input rows (or columns) [begin, end) that output row (or column) `o` covers, clipped to the input.
  struct Span {
    size_t begin, end;
  };
  Span window(size_t o, size_t in_size) const;

  Pool2dOptions options_;
  size_t channels_ = 0, in_height_ = 0, in_width_ = 0;
  size_t out_height_ = 0, out_width_ = 0;
};

inline Pool2dLayer::Span Pool2dLayer::window(size_t o, size_t in_size) const {
  const size_t start = o * options_.stride;  // in padded coordinates
  const size_t begin = start > options_.padding ? start - options_.padding : 0;
  const size_t stop = start + options_.kernel;
  const size_t end = stop > options_.padding ? stop - options_.padding : 0;
  return {begin, end < in_size ? end : in_size};
}

}  // namespace dptrain
