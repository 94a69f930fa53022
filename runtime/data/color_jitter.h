// Colour jitter (torchvision's ColorJitter without hue): random brightness, contrast and saturation
// of pixel values in [0, 1], in a random order.
#pragma once

#include <array>
#include <cstddef>

#include "runtime/core/rng.h"

namespace dptrain {

// The colour adjustments ColorJitter knows, in the order their factors are drawn.
enum class ColorOp { Brightness = 0, Contrast = 1, Saturation = 2 };

// A factor range per adjustment; an adjustment whose range is exactly [1, 1] is off (draws nothing).
struct ColorJitterRange {
  std::array<double, 3> min{1.0, 1.0, 1.0};  // by ColorOp
  std::array<double, 3> max{1.0, 1.0, 1.0};  // by ColorOp; 0 <= min <= max

  bool on(ColorOp op) const { return !(min[static_cast<size_t>(op)] == 1.0 && max[static_cast<size_t>(op)] == 1.0); }
};

// One sample's jitter: the order the adjustments are applied in, and their factors (1 when off).
struct ColorJitterDraw {
  std::array<ColorOp, 3> order{ColorOp::Brightness, ColorOp::Contrast, ColorOp::Saturation};
  std::array<float, 3> factor{1.0f, 1.0f, 1.0f};  // by ColorOp
};

// Draws from `rng`, in this order: the application order, a permutation of (brightness, contrast,
// saturation) by Fisher-Yates (below(3), then below(2)); then the factor of each adjustment that is on,
// uniform in [min, max], brightness first, then contrast, then saturation.
ColorJitterDraw draw_color_jitter(Rng& rng, const ColorJitterRange& range);

// Applies `draw` to the (channels, plane) values of one image in [0, 1], in its order, clamping to [0, 1]
// after each adjustment as torchvision does on float tensors:
//   brightness: f * x;
//   contrast:   f * x + (1 - f) * mean of the greyscale image (0.299 R + 0.587 G + 0.114 B, or the one channel);
//   saturation: f * x + (1 - f) * the pixel's greyscale value (3 channels only; ShapeError otherwise).
// A factor of exactly 1 leaves the values as they are.
void apply_color_jitter(float* values, size_t channels, size_t plane, const ColorJitterDraw& draw);

}  // namespace dptrain
