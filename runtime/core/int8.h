// Rounding of weights to int8 for models quantized after training (dptrain quantize): symmetric, per
// output channel, so that weight ~= quantize_weight(weight, scale) * scale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace dptrain {

// The largest magnitude of a rounded weight.
inline constexpr float kInt8WeightLimit = 127.0f;

// The rounded weight (-127..127) nearest weight / scale (scale > 0).
inline signed char quantize_weight(float weight, float scale) {
  return static_cast<signed char>(std::clamp(std::nearbyint(weight / scale), -kInt8WeightLimit, kInt8WeightLimit));
}

// The per-output-channel scales of a weight of `channels` rows of `per_channel` values: max |w[c, ...]| / 127,
// so that the largest value of each channel rounds to +-127; 1 for a channel of zeros (a pruned one),
// which rounds to zeros whatever its scale.
inline std::vector<float> int8_weight_scales(const float* weight, size_t channels, size_t per_channel) {
  std::vector<float> scales(channels);
  for (size_t c = 0; c < channels; ++c) {
    float largest = 0;
    for (size_t k = 0; k < per_channel; ++k) largest = std::max(largest, std::fabs(weight[c * per_channel + k]));
    scales[c] = largest > 0 ? largest / kInt8WeightLimit : 1.0f;
  }
  return scales;
}

}  // namespace dptrain
