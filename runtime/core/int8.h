// Rounding of weights to int8 for models quantized after training (dptrain quantize): symmetric, per
// output channel, so that weight ~= quantize_weight(weight, scale) * scale.
#pragma once

#include <algorithm>
#include <cmath>

namespace dptrain {

// The largest magnitude of a rounded weight.
inline constexpr float kInt8WeightLimit = 127.0f;

// The rounded weight (-127..127) nearest weight / scale (scale > 0).
inline signed char quantize_weight(float weight, float scale) {
  return static_cast<signed char>(std::clamp(std::nearbyint(weight / scale), -kInt8WeightLimit, kInt8WeightLimit));
}

}  // namespace dptrain
