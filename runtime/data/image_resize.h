// Fitting a decoded image to a data set's sample shape: channel conversion, resizing and cropping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/core/tensor.h"
#include "runtime/data/image_io.h"

namespace dptrain {

// How an image of another size is brought to the configured (H, W).
enum class ResizeMode {
  Crop,     // scale so that the image covers (H, W) with its aspect ratio kept, then cut the centre
  Stretch,  // scale width and height independently to exactly (W, H)
};

// Writes `image` as `channels` x `height` x `width` bytes (C, H, W) to `out`. Grey becomes RGB by
// repeating it; RGB becomes grey as ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B). Resampling is
// bilinear, widened to a triangle filter over every covered source pixel when shrinking (so that
// downscaling averages instead of skipping pixels). An image already of the target size is copied as is.
// With `shorter_side` > 0 (ResizeMode::Crop only; at least max(height, width)), the image is scaled so that
// its shorter side has that many pixels and the centre (height, width) is cut out: torchvision's
// Resize(shorter_side) then CenterCrop((height, width)).
void fit_image(const Image& image, size_t channels, size_t height, size_t width, ResizeMode mode, uint8_t* out,
               size_t shorter_side = 0);

// What an image is fitted to: the (C, H, W) of a sample, C 1 or 3, and how other sizes are brought to it.
struct ImageFit {
  Shape shape{3, 32, 32};  // (C, H, W)
  ResizeMode resize = ResizeMode::Crop;
  size_t shorter_side = 0;  // > 0 (with ResizeMode::Crop): shorter side scaled to this, centre (H, W) cut out
};

// Reads the PNG or JPEG file at `path` and fits it to `fit` as (C, H, W) bytes in `out`: how every image
// of an image folder, and every image `dptrain predict` reads, becomes a sample. DataError naming the file
// when it cannot be read or decoded; ShapeError for a `fit` fit_image refuses.
void read_fitted_image(const std::string& path, const ImageFit& fit, uint8_t* out);

}  // namespace dptrain
