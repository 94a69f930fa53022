#include "runtime/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"

namespace dptrain {

namespace {

float per_channel(const std::vector<float>& values, size_t c) { return values.size() == 1 ? values[0] : values[c]; }

void check_channels(const std::vector<float>& values, size_t channels, const char* what) {
  if (values.size() != 1 && values.size() != channels) {
    throw ShapeError(std::string("augmentation has ") + what + " for " + std::to_string(values.size()) +
                     " channels but the sample has " + std::to_string(channels));
  }
}

std::string range_text(double lo, double hi) { return "[" + format_number(lo) + ", " + format_number(hi) + "]"; }

}  // namespace

Augmentation::Augmentation(AugmentOptions options) : options_(std::move(options)) {
  if (options_.mean.empty()) options_.mean.push_back(0.0f);
  if (options_.std.empty()) options_.std.push_back(1.0f);
  const size_t n = std::max(options_.mean.size(), options_.std.size());
  for (size_t c = 0; c < n; ++c) fill_.push_back((0.0f - per_channel(options_.mean, c)) / per_channel(options_.std, c));
}

Augmentation::Augmentation(size_t crop_padding, HorizontalFlip flip, std::vector<float> fill) : fill_(std::move(fill)) {
  options_.crop_padding = crop_padding;
  options_.flip = flip;
  if (fill_.empty()) fill_.push_back(0.0f);
}

void Augmentation::apply(float* sample, const Shape& shape, uint64_t seed, uint64_t epoch, uint64_t global_index,
                         float* scratch) const {
  if (shape.size() != 3) throw ShapeError("augmentation needs (C, H, W) samples, got " + to_string(shape));
  const size_t channels = shape[0], height = shape[1], width = shape[2], plane = height * width;
  check_channels(fill_, channels, "padding values");
  Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Augment), epoch, global_index));

  if (options_.resized_crop) {
    const CropWindow window = draw_resized_crop(rng, height, width, *options_.resized_crop);
    if (window.height != height || window.width != width) {
      std::memcpy(scratch, sample, channels * plane * sizeof(float));
      for (size_t c = 0; c < channels; ++c) {
        resize_window_bilinear(scratch + c * plane, height, width, window, sample + c * plane, height, width);
      }
    }
  }
  const size_t p = options_.crop_padding;
  const size_t dy = p > 0 ? rng.below(2 * p + 1) : p;
  const size_t dx = p > 0 ? rng.below(2 * p + 1) : p;
  const bool flipped = options_.flip == HorizontalFlip::Yes && rng.below(2) == 1;
  if (dy != p || dx != p || flipped) pad_crop_and_flip(sample, channels, height, width, dy, dx, flipped, scratch);
  if (options_.color_jitter) jitter(sample, channels, plane, draw_color_jitter(rng, *options_.color_jitter));
}

void Augmentation::pad_crop_and_flip(float* sample, size_t channels, size_t height, size_t width, size_t dy, size_t dx,
                                     bool flipped, float* scratch) const {
  const size_t plane = height * width;
  std::memcpy(scratch, sample, channels * plane * sizeof(float));
  // Output (y, x) reads padded (y + dy, x' + dx), i.e. source (y + dy - p, x' + dx - p), where x' = x or W - 1 - x.
  const auto shift_y = static_cast<ptrdiff_t>(dy) - static_cast<ptrdiff_t>(options_.crop_padding);
  const auto shift_x = static_cast<ptrdiff_t>(dx) - static_cast<ptrdiff_t>(options_.crop_padding);
  for (size_t c = 0; c < channels; ++c) {
    const float fill = per_channel(fill_, c);
    const float* src = scratch + c * plane;
    float* dst = sample + c * plane;
    for (size_t y = 0; y < height; ++y) {
      const ptrdiff_t sy = static_cast<ptrdiff_t>(y) + shift_y;
      float* row = dst + y * width;
      if (sy < 0 || sy >= static_cast<ptrdiff_t>(height)) {
        std::fill(row, row + width, fill);
        continue;
      }
      const float* src_row = src + static_cast<size_t>(sy) * width;
      for (size_t x = 0; x < width; ++x) {
        const size_t xo = flipped ? width - 1 - x : x;
        const ptrdiff_t sx = static_cast<ptrdiff_t>(xo) + shift_x;
        row[x] = (sx < 0 || sx >= static_cast<ptrdiff_t>(width)) ? fill : src_row[sx];
      }
    }
  }
}

void Augmentation::jitter(float* sample, size_t channels, size_t plane, const ColorJitterDraw& draw) const {
  check_channels(options_.mean, channels, "means");
  check_channels(options_.std, channels, "standard deviations");
  for (size_t c = 0; c < channels; ++c) {
    const float m = per_channel(options_.mean, c), s = per_channel(options_.std, c);
    for (float* v = sample + c * plane; v != sample + (c + 1) * plane; ++v) *v = *v * s + m;
  }
  apply_color_jitter(sample, channels, plane, draw);
  for (size_t c = 0; c < channels; ++c) {
    const float m = per_channel(options_.mean, c), s = per_channel(options_.std, c);
    for (float* v = sample + c * plane; v != sample + (c + 1) * plane; ++v) *v = (*v - m) / s;
  }
}

std::string Augmentation::describe() const {
  std::vector<std::string> steps;
  if (const auto& r = options_.resized_crop) {
    steps.push_back("random resized crop (scale " + range_text(r->scale_min, r->scale_max) + ", ratio " +
                    range_text(r->ratio_min, r->ratio_max) + ", of the sample at data.shape)");
  }
  if (options_.crop_padding > 0) {
    steps.push_back("random crop (padding " + std::to_string(options_.crop_padding) +
                    ", padded with the normalised value of a 0 pixel)");
  }
  if (options_.flip == HorizontalFlip::Yes) steps.push_back("horizontal flip");
  if (const auto& j = options_.color_jitter) {
    const char* names[] = {"brightness", "contrast", "saturation"};
    std::string parts;
    for (size_t k = 0; k < 3; ++k) {
      if (!j->on(static_cast<ColorOp>(k))) continue;
      parts += std::string(parts.empty() ? "" : ", ") + names[k] + " " + range_text(j->min[k], j->max[k]);
    }
    steps.push_back("colour jitter (" + parts + ", in random order)");
  }
  std::string out;
  for (const auto& s : steps) out += (out.empty() ? "" : " + ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace dptrain
