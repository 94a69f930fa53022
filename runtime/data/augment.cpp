#include "runtime/data/augment.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"

namespace dptrain {

Augmentation::Augmentation(size_t crop_padding, HorizontalFlip flip, std::vector<float> fill)
    : crop_padding_(crop_padding), flip_(flip), fill_(std::move(fill)) {
  if (fill_.empty()) fill_.push_back(0.0f);
}

void Augmentation::apply(float* sample, const Shape& shape, uint64_t seed, uint64_t epoch, uint64_t global_index,
                         float* scratch) const {
  if (shape.size() != 3) throw ShapeError("augmentation needs (C, H, W) samples, got " + to_string(shape));
  const size_t channels = shape[0], height = shape[1], width = shape[2];
  if (fill_.size() != 1 && fill_.size() != channels) {
    throw ShapeError("augmentation has padding values for " + std::to_string(fill_.size()) +
                     " channels but the sample has " + std::to_string(channels));
  }
  Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Augment), epoch, global_index));
  const size_t span = 2 * crop_padding_ + 1;
  const size_t dy = crop_padding_ > 0 ? rng.below(span) : crop_padding_;
  const size_t dx = crop_padding_ > 0 ? rng.below(span) : crop_padding_;
  const bool flipped = flip_ == HorizontalFlip::Yes && rng.below(2) == 1;
  if (dy == crop_padding_ && dx == crop_padding_ && !flipped) return;  // the identity

  const size_t plane = height * width;
  std::memcpy(scratch, sample, channels * plane * sizeof(float));
  // Output (y, x) reads padded (y + dy, x' + dx), i.e. source (y + dy - p, x' + dx - p), where x' = x or W - 1 - x.
  const auto shift_y = static_cast<ptrdiff_t>(dy) - static_cast<ptrdiff_t>(crop_padding_);
  const auto shift_x = static_cast<ptrdiff_t>(dx) - static_cast<ptrdiff_t>(crop_padding_);
  for (size_t c = 0; c < channels; ++c) {
    const float fill = fill_.size() == 1 ? fill_[0] : fill_[c];
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

std::string Augmentation::describe() const {
  std::string out;
  if (crop_padding_ > 0) {
    out = "random crop (padding " + std::to_string(crop_padding_) + ", padded with the normalised value of a 0 pixel)";
  }
  if (flip_ == HorizontalFlip::Yes) out += std::string(out.empty() ? "" : " + ") + "horizontal flip";
  return out.empty() ? "none" : out;
}

std::shared_ptr<const Augmentation> make_augmentation(ConfigMap& augment, size_t channels,
                                                      const std::vector<float>& mean, const std::vector<float>& std) {
  const size_t padding = augment.get_size("crop_padding", size_t{0});
  const bool flip = augment.get_bool("horizontal_flip", false);
  augment.finish();
  if (padding > 64) augment.fail("crop_padding", "must be at most 64 pixels, got " + std::to_string(padding));
  if (padding == 0 && !flip) return nullptr;
  std::vector<float> fill(channels);
  for (size_t c = 0; c < channels; ++c) {
    const float m = mean.size() == 1 ? mean[0] : mean.at(c);
    const float s = std.size() == 1 ? std[0] : std.at(c);
    fill[c] = (0.0f - m) / s;
  }
  return std::make_shared<const Augmentation>(padding, flip ? HorizontalFlip::Yes : HorizontalFlip::No,
                                              std::move(fill));
}

}  // namespace dptrain
