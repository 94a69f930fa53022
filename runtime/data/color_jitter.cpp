#include "runtime/data/color_jitter.h"

#include <algorithm>
#include <string>
#include <utility>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

float clamp01(float v) { return std::clamp(v, 0.0f, 1.0f); }

float grey(const float* values, size_t plane, size_t p) {
  return 0.299f * values[p] + 0.587f * values[plane + p] + 0.114f * values[2 * plane + p];
}

// Blends every value with `towards(p)`, the blend target of pixel p: f * x + (1 - f) * target.
template <typename Target>
void blend(float* values, size_t channels, size_t plane, float f, Target towards) {
  for (size_t c = 0; c < channels; ++c) {
    float* v = values + c * plane;
    for (size_t p = 0; p < plane; ++p) v[p] = clamp01(f * v[p] + (1.0f - f) * towards(p));
  }
}

void adjust(ColorOp op, float f, float* values, size_t channels, size_t plane) {
  if (f == 1.0f) return;
  switch (op) {
    case ColorOp::Brightness:
      blend(values, channels, plane, f, [](size_t) { return 0.0f; });
      break;
    case ColorOp::Contrast: {
      double sum = 0.0;
      for (size_t p = 0; p < plane; ++p) sum += channels == 3 ? grey(values, plane, p) : values[p];
      const auto mean = static_cast<float>(sum / static_cast<double>(plane));
      blend(values, channels, plane, f, [mean](size_t) { return mean; });
      break;
    }
    case ColorOp::Saturation: {
      if (channels != 3) {
        throw ShapeError("colour jitter: saturation needs 3 channels, the sample has " + std::to_string(channels));
      }
      for (size_t p = 0; p < plane; ++p) {
        const float g = grey(values, plane, p);
        for (size_t c = 0; c < 3; ++c) values[c * plane + p] = clamp01(f * values[c * plane + p] + (1.0f - f) * g);
      }
      break;
    }
  }
}

}  // namespace

ColorJitterDraw draw_color_jitter(Rng& rng, const ColorJitterRange& range) {
  ColorJitterDraw d;
  for (size_t i = 2; i > 0; --i) std::swap(d.order[i], d.order[rng.below(i + 1)]);
  for (size_t k = 0; k < 3; ++k) {
    if (!range.on(static_cast<ColorOp>(k))) continue;
    d.factor[k] = static_cast<float>(range.min[k] + (range.max[k] - range.min[k]) * static_cast<double>(rng.uniform()));
  }
  return d;
}

void apply_color_jitter(float* values, size_t channels, size_t plane, const ColorJitterDraw& draw) {
  for (ColorOp op : draw.order) adjust(op, draw.factor[static_cast<size_t>(op)], values, channels, plane);
}

}  // namespace dptrain
