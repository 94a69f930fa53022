// Augmentation of training samples: random crop with padding and horizontal flip, keyed by
// (seed, epoch, global sample index) so that the result never depends on threads or workers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Whether a sample may be mirrored left to right.
enum class HorizontalFlip { No, Yes };

// A stateless transform of one normalised (C, H, W) sample; `apply` is const and safe to call from
// many threads at once.
//
// For sample `global_index` of epoch `epoch`, an Rng keyed by hash_key(seed, RngStream::Augment, epoch,
// global_index) draws, in this order: when crop_padding > 0 the crop's row offset dy and column offset dx,
// each uniform in [0, 2 * crop_padding]; then, with HorizontalFlip::Yes, whether to flip (probability 1/2). The
// output is the (H, W) window at (dy, dx) of the sample padded by crop_padding on every side, mirrored
// when flipped. Padding takes the value a raw 0 pixel has after normalisation, (0 - mean[c]) / std[c]:
// the same as padding the raw image with black before normalising, as torchvision's RandomCrop does.
class Augmentation {
 public:
  // `fill` is the padding value per channel (one value for all channels, or one per channel).
  Augmentation(size_t crop_padding, HorizontalFlip flip, std::vector<float> fill);

  // Transforms `sample` in place. `scratch` must hold num_elements(shape) floats.
  void apply(float* sample, const Shape& shape, uint64_t seed, uint64_t epoch, uint64_t global_index,
             float* scratch) const;
  // e.g. "random crop (padding 4, pad value = normalised 0) + horizontal flip"
  std::string describe() const;

  size_t crop_padding() const { return crop_padding_; }
  HorizontalFlip flip() const { return flip_; }

 private:
  size_t crop_padding_;
  HorizontalFlip flip_;
  std::vector<float> fill_;  // (1) or (C)
};

// Builds the augmentation of the `data.augment` mapping (keys crop_padding, horizontal_flip; finish()
// is called here) for samples with `channels` channels normalised by `mean` and `std` (1 or C entries
// each). Returns null when nothing is configured.
std::shared_ptr<const Augmentation> make_augmentation(ConfigMap& augment, size_t channels,
                                                      const std::vector<float>& mean, const std::vector<float>& std);

}  // namespace dptrain
