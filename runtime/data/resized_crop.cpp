#include "runtime/data/resized_crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

double uniform_in(Rng& rng, double lo, double hi) { return lo + (hi - lo) * static_cast<double>(rng.uniform()); }

size_t round_to_size(double v) { return v <= 0.0 ? 0 : static_cast<size_t>(std::llround(v)); }

// For each output position along one axis: the two source indices and the weight of the second.
struct Axis {
  std::vector<size_t> lo, hi;
  std::vector<float> frac;
};

Axis make_axis(size_t start, size_t length, size_t out) {
  Axis a;
  a.lo.resize(out);
  a.hi.resize(out);
  a.frac.resize(out);
  const double scale = static_cast<double>(length) / static_cast<double>(out);
  for (size_t i = 0; i < out; ++i) {
    const double s = std::clamp((static_cast<double>(i) + 0.5) * scale - 0.5, 0.0, static_cast<double>(length - 1));
    const auto lo = static_cast<size_t>(std::floor(s));
    a.lo[i] = start + lo;
    a.hi[i] = start + std::min(lo + 1, length - 1);
    a.frac[i] = static_cast<float>(s - static_cast<double>(lo));
  }
  return a;
}

}  // namespace

CropWindow draw_resized_crop(Rng& rng, size_t height, size_t width, const ResizedCropRange& range) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_min = std::log(range.ratio_min), log_max = std::log(range.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform_in(rng, range.scale_min, range.scale_max);
    const double ratio = std::exp(uniform_in(rng, log_min, log_max));
    const size_t w = round_to_size(std::sqrt(target * ratio));
    const size_t h = round_to_size(std::sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const size_t y = rng.below(height - h + 1);
      const size_t x = rng.below(width - w + 1);
      return {y, x, h, w};
    }
  }
  // Fallback: the whole plane, narrowed to the nearest allowed aspect ratio, centred.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  size_t w = width, h = height;
  if (in_ratio < range.ratio_min) {
    h = std::clamp<size_t>(round_to_size(static_cast<double>(w) / range.ratio_min), 1, height);
  } else if (in_ratio > range.ratio_max) {
    w = std::clamp<size_t>(round_to_size(static_cast<double>(h) * range.ratio_max), 1, width);
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

void resize_window_bilinear(const float* src, size_t src_height, size_t src_width, const CropWindow& window, float* dst,
                            size_t height, size_t width) {
  if (window.height == 0 || window.width == 0 || window.y + window.height > src_height ||
      window.x + window.width > src_width || height == 0 || width == 0) {
    throw ShapeError("resize_window_bilinear: window (" + std::to_string(window.y) + ", " + std::to_string(window.x) +
                     ", " + std::to_string(window.height) + ", " + std::to_string(window.width) +
                     ") does not fit a plane of " + std::to_string(src_height) + " x " + std::to_string(src_width));
  }
  const Axis rows = make_axis(window.y, window.height, height);
  const Axis cols = make_axis(window.x, window.width, width);
  for (size_t y = 0; y < height; ++y) {
    const float* top = src + rows.lo[y] * src_width;
    const float* bottom = src + rows.hi[y] * src_width;
    const float fy = rows.frac[y];
    float* out = dst + y * width;
    for (size_t x = 0; x < width; ++x) {
      const float fx = cols.frac[x];
      const float upper = top[cols.lo[x]] + fx * (top[cols.hi[x]] - top[cols.lo[x]]);
      const float lower = bottom[cols.lo[x]] + fx * (bottom[cols.hi[x]] - bottom[cols.lo[x]]);
      out[x] = upper + fy * (lower - upper);
    }
  }
}

}  // namespace dptrain
