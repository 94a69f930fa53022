#include "runtime/train/non_finite.h"

#include <cmath>

namespace dptrain {

bool all_finite(const float* values, size_t count) {
  // x * 0 is 0 for every finite x and nan otherwise; eight sums let the compiler vectorize.
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    for (size_t k = 0; k < 8; ++k) lanes[k] += values[i + k] * 0.0f;
  }
  float total = 0;
  for (; i < count; ++i) total += values[i] * 0.0f;
  for (float lane : lanes) total += lane;
  return total == 0.0f;
}

std::string describe_non_finite(float value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

std::optional<std::string> first_non_finite(const float* flat, const std::vector<ParamEntry>& entries, ParamUse use) {
  for (const ParamEntry& entry : entries) {
    if (entry.use != use) continue;
    const float* values = flat + entry.offset;
    const size_t count = num_elements(entry.shape);
    if (all_finite(values, count)) continue;
    for (size_t i = 0; i < count; ++i) {
      if (std::isfinite(values[i])) continue;
      return entry.name + " (element " + std::to_string(i) + " of " + std::to_string(count) + ": " +
             describe_non_finite(values[i]) + ")";
    }
  }
  return std::nullopt;
}

}  // namespace dptrain
