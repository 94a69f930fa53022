#include "runtime/data/pixel_normalization.h"

#include <cmath>

#include "runtime/core/errors.h"

namespace dptrain {

PixelNormalization::PixelNormalization(size_t channels, const std::vector<float>& mean, const std::vector<float>& std,
                                       const std::string& source)
    : channels_(channels) {
  if ((mean.size() != 1 && mean.size() != channels) || (std.size() != 1 && std.size() != channels)) {
    throw DataError(source + ": mean and std need 1 or " + std::to_string(channels) + " entries, got " +
                    std::to_string(mean.size()) + " and " + std::to_string(std.size()));
  }
  lut_.resize(channels * 256);
  for (size_t c = 0; c < channels; ++c) {
    const double m = mean.size() == 1 ? mean[0] : mean[c];
    const double s = std.size() == 1 ? std[0] : std[c];
    if (!(s > 0.0) || !std::isfinite(s) || !std::isfinite(m)) {
      throw DataError(source + ": normalisation needs a finite mean and a std > 0");
    }
    for (size_t v = 0; v < 256; ++v) lut_[c * 256 + v] = static_cast<float>((static_cast<double>(v) / 255.0 - m) / s);
  }
}

void PixelNormalization::apply(const uint8_t* pixels, size_t plane, float* out) const {
  for (size_t c = 0; c < channels_; ++c) {
    const float* lut = lut_.data() + c * 256;
    for (size_t p = 0; p < plane; ++p) out[c * plane + p] = lut[pixels[c * plane + p]];
  }
}

}  // namespace dptrain
