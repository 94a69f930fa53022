// PixelNormalization: 8-bit pixels to a sample's floats, (pixel / 255 - mean[c]) / std[c], through a
// table per channel; what image folders and `dptrain predict` apply to every fitted image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dptrain {

// The normalisation of one data set's 8-bit (C, H, W) images.
class PixelNormalization {
 public:
  // `mean` and `std` hold 1 (for every channel) or `channels` entries, finite, every std > 0; otherwise
  // DataError naming `source` (the data set).
  PixelNormalization(size_t channels, const std::vector<float>& mean, const std::vector<float>& std,
                     const std::string& source);

  size_t channels() const { return channels_; }
  // Writes the (C, plane) floats of the (C, plane) bytes `pixels` to `out`.
  void apply(const uint8_t* pixels, size_t plane, float* out) const;

 private:
  size_t channels_;
  std::vector<float> lut_;  // (C, 256): normalised value of each byte per channel
};

}  // namespace dptrain
