// Random resized crop (torchvision's RandomResizedCrop): a window of random area and aspect ratio,
// resized bilinearly back to the sample's (H, W).
#pragma once

#include <cstddef>

#include "runtime/core/rng.h"

namespace dptrain {

// The ranges a random resized crop draws from: area as a fraction of the sample, and width / height.
struct ResizedCropRange {
  double scale_min = 0.08, scale_max = 1.0;             // 0 < scale_min <= scale_max <= 1
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // 0 < ratio_min <= ratio_max
};

// A window of a (H, W) plane: rows [y, y + height), columns [x, x + width).
struct CropWindow {
  size_t y = 0, x = 0, height = 0, width = 0;
};

// Draws the window as torchvision does. Up to 10 tries, each drawing from `rng`, in this order: the area
// fraction uniform in [scale_min, scale_max]; log(ratio) uniform in [log ratio_min, log ratio_max]; then,
// when w = round(sqrt(area * ratio)) and h = round(sqrt(area / ratio)) fit in (height, width), the row
// offset uniform in [0, height - h] and the column offset uniform in [0, width - w]. When no try fits,
// nothing more is drawn: the centred window of the whole plane clamped to the ratio range is taken.
CropWindow draw_resized_crop(Rng& rng, size_t height, size_t width, const ResizedCropRange& range);

// Resizes `window` of the (src_height, src_width) plane `src` to the (height, width) plane `dst`
// bilinearly, sampling at pixel centres (PyTorch's align_corners=False) and clamping at the window's
// edges. No antialiasing: the window is never larger than the output here, so this only enlarges.
void resize_window_bilinear(const float* src, size_t src_height, size_t src_width, const CropWindow& window, float* dst,
                            size_t height, size_t width);

}  // namespace dptrain
