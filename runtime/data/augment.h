// Augmentation of training samples: random resized crop, random crop with padding, horizontal flip and
// colour jitter, keyed by (seed, epoch, global sample index) so that the result never depends on threads
// or workers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"
#include "runtime/data/color_jitter.h"
#include "runtime/data/resized_crop.h"

namespace dptrain {

// Whether a sample may be mirrored left to right.
enum class HorizontalFlip { No, Yes };

// Everything an Augmentation may do, and the normalisation of the samples it sees.
struct AugmentOptions {
  std::optional<ResizedCropRange> resized_crop;  // random resized crop of the (H, W) sample
  size_t crop_padding = 0;                       // random crop with this much padding; 0: off
  HorizontalFlip flip = HorizontalFlip::No;
  std::optional<ColorJitterRange> color_jitter;
  std::vector<float> mean{0.0f}, std{1.0f};  // (1) or (C): samples hold (pixel / 255 - mean) / std
};

// A stateless transform of one normalised (C, H, W) sample; `apply` is const and safe to call from
// many threads at once.
//
// For sample `global_index` of epoch `epoch`, one Rng keyed by hash_key(seed, RngStream::Augment, epoch,
// global_index) draws, in this order, only for the steps that are on:
//  1. random resized crop: the window, as draw_resized_crop documents; the window of the sample is resized
//     bilinearly back to (H, W). This crops the sample already fitted to data.shape, not the original image.
//  2. random crop: the row offset dy and column offset dx, each uniform in [0, 2 * crop_padding]; the output
//     is the (H, W) window at (dy, dx) of the sample padded by crop_padding on every side. Padding takes the
//     value a raw 0 pixel has after normalisation, (0 - mean[c]) / std[c]: the same as padding the raw image
//     with black before normalising, as torchvision's RandomCrop does.
//  3. horizontal flip: whether to mirror (probability 1/2).
//  4. colour jitter: the order and factors, as draw_color_jitter documents; applied to the un-normalised
//     values x * std + mean, clamped to [0, 1], then normalised again.
// Steps are applied in the same order. With only steps 2 and 3 on, the draws are those of earlier versions.
class Augmentation {
 public:
  explicit Augmentation(AugmentOptions options);
  // Random crop and flip only; `fill` is the padding value per channel (one for all channels, or one per channel).
  Augmentation(size_t crop_padding, HorizontalFlip flip, std::vector<float> fill);

  // Transforms `sample` in place. `scratch` must hold num_elements(shape) floats.
  void apply(float* sample, const Shape& shape, uint64_t seed, uint64_t epoch, uint64_t global_index,
             float* scratch) const;
  // e.g. "random crop (padding 4, padded with the normalised value of a 0 pixel) + horizontal flip"
  std::string describe() const;

  size_t crop_padding() const { return options_.crop_padding; }
  HorizontalFlip flip() const { return options_.flip; }
  const std::optional<ResizedCropRange>& resized_crop() const { return options_.resized_crop; }
  const std::optional<ColorJitterRange>& color_jitter() const { return options_.color_jitter; }

 private:
  void pad_crop_and_flip(float* sample, size_t channels, size_t height, size_t width, size_t dy, size_t dx,
                         bool flipped, float* scratch) const;
  void jitter(float* sample, size_t channels, size_t plane, const ColorJitterDraw& draw) const;

  AugmentOptions options_;
  std::vector<float> fill_;  // (1) or (C)
};

// Builds the augmentation of the `data.augment` mapping (keys random_resized_crop {scale, ratio},
// crop_padding, horizontal_flip, color_jitter {brightness, contrast, saturation}; finish() is called here)
// for samples with `channels` channels normalised by `mean` and `std` (1 or C entries each). Returns null
// when nothing is configured.
std::shared_ptr<const Augmentation> make_augmentation(ConfigMap& augment, size_t channels,
                                                      const std::vector<float>& mean, const std::vector<float>& std);

}  // namespace dptrain
