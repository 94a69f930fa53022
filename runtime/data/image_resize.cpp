#include "runtime/data/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// A 1-D resampling: output i is the sum over t < count[i] of weights[i * stride + t] * source[first[i] + t].
struct Taps {
  std::vector<size_t> first;
  std::vector<size_t> count;
  std::vector<float> weights;
  size_t stride = 0;
};

// Maps the source window [start, start + length) of an axis of `size` pixels onto `out` pixels with a
// triangle filter whose radius is one output pixel measured in source pixels (at least one source pixel).
Taps make_taps(size_t size, double start, double length, size_t out) {
  const double scale = length / static_cast<double>(out);
  const double radius = std::max(1.0, scale);
  Taps taps;
  taps.stride = static_cast<size_t>(std::ceil(2.0 * radius)) + 2;
  taps.first.resize(out);
  taps.count.resize(out);
  taps.weights.assign(out * taps.stride, 0.0f);
  for (size_t i = 0; i < out; ++i) {
    const double centre = start + (static_cast<double>(i) + 0.5) * scale;
    const auto lo = static_cast<ptrdiff_t>(std::floor(centre - radius));
    const auto hi = static_cast<ptrdiff_t>(std::ceil(centre + radius));
    const size_t begin = static_cast<size_t>(std::clamp<ptrdiff_t>(lo, 0, static_cast<ptrdiff_t>(size) - 1));
    const size_t end =
        static_cast<size_t>(std::clamp<ptrdiff_t>(hi, static_cast<ptrdiff_t>(begin) + 1, static_cast<ptrdiff_t>(size)));
    const size_t n = std::min(end - begin, taps.stride);
    float* w = taps.weights.data() + i * taps.stride;
    double sum = 0.0;
    for (size_t t = 0; t < n; ++t) {
      const double distance = std::fabs(static_cast<double>(begin + t) + 0.5 - centre) / radius;
      w[t] = static_cast<float>(std::max(0.0, 1.0 - distance));
      sum += w[t];
    }
    if (sum > 0.0) {
      for (size_t t = 0; t < n; ++t) w[t] = static_cast<float>(w[t] / sum);
    } else {  // the window lies beyond the edge: take the nearest pixel
      w[0] = 1.0f;
    }
    taps.first[i] = begin;
    taps.count[i] = sum > 0.0 ? n : 1;
  }
  return taps;
}

// Resamples the window of `image` to (height, width, image.channels) floats.
std::vector<float> resample(const Image& image, size_t height, size_t width, ResizeMode mode, size_t shorter_side) {
  const double h = static_cast<double>(image.height), w = static_cast<double>(image.width);
  double window_h = h, window_w = w;
  if (mode == ResizeMode::Crop) {
    const double scale = shorter_side > 0 ? static_cast<double>(shorter_side) / std::min(h, w)
                                          : std::max(static_cast<double>(height) / h, static_cast<double>(width) / w);
    window_h = std::min(h, static_cast<double>(height) / scale);
    window_w = std::min(w, static_cast<double>(width) / scale);
  }
  const Taps rows = make_taps(image.height, (h - window_h) / 2.0, window_h, height);
  const Taps cols = make_taps(image.width, (w - window_w) / 2.0, window_w, width);
  const size_t c = image.channels;

  // Horizontal pass over the source rows that the vertical pass reads.
  const size_t row_begin = rows.first.front();
  const size_t row_end = rows.first.back() + rows.count.back();
  std::vector<float> across((row_end - row_begin) * width * c, 0.0f);  // (rows, width, c)
  for (size_t y = row_begin; y < row_end; ++y) {
    const uint8_t* src = image.pixels.data() + y * image.width * c;
    float* dst = across.data() + (y - row_begin) * width * c;
    for (size_t x = 0; x < width; ++x) {
      const float* wt = cols.weights.data() + x * cols.stride;
      const uint8_t* s = src + cols.first[x] * c;
      for (size_t t = 0; t < cols.count[x]; ++t) {
        for (size_t k = 0; k < c; ++k) dst[x * c + k] += wt[t] * static_cast<float>(s[t * c + k]);
      }
    }
  }
  std::vector<float> out(height * width * c, 0.0f);  // (height, width, c)
  for (size_t y = 0; y < height; ++y) {
    const float* wt = rows.weights.data() + y * rows.stride;
    float* dst = out.data() + y * width * c;
    for (size_t t = 0; t < rows.count[y]; ++t) {
      const float* src = across.data() + (rows.first[y] + t - row_begin) * width * c;
      for (size_t i = 0; i < width * c; ++i) dst[i] += wt[t] * src[i];
    }
  }
  return out;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

// Writes interleaved (H, W, in_channels) values as planar (channels, H, W) bytes.
template <typename T>
void to_planar(const T* src, size_t in_channels, size_t channels, size_t pixels, uint8_t* out) {
  if (in_channels == channels) {
    for (size_t p = 0; p < pixels; ++p) {
      for (size_t k = 0; k < channels; ++k) out[k * pixels + p] = to_byte(static_cast<float>(src[p * channels + k]));
    }
  } else if (in_channels == 1) {  // grey to RGB
    for (size_t p = 0; p < pixels; ++p) {
      const uint8_t v = to_byte(static_cast<float>(src[p]));
      for (size_t k = 0; k < channels; ++k) out[k * pixels + p] = v;
    }
  } else {  // RGB to grey
    for (size_t p = 0; p < pixels; ++p) {
      const T* s = src + p * 3;
      out[p] = to_byte(0.299f * static_cast<float>(s[0]) + 0.587f * static_cast<float>(s[1]) +
                       0.114f * static_cast<float>(s[2]));
    }
  }
}

}  // namespace

void fit_image(const Image& image, size_t channels, size_t height, size_t width, ResizeMode mode, uint8_t* out,
               size_t shorter_side) {
  if ((channels != 1 && channels != 3) || (image.channels != 1 && image.channels != 3) || height == 0 || width == 0 ||
      image.width == 0 || image.height == 0 || image.pixels.size() != image.width * image.height * image.channels) {
    throw ShapeError("fit_image: cannot fit an image of " + std::to_string(image.channels) + " x " +
                     std::to_string(image.height) + " x " + std::to_string(image.width) + " to " +
                     std::to_string(channels) + " x " + std::to_string(height) + " x " + std::to_string(width));
  }
  if (shorter_side > 0 && (mode != ResizeMode::Crop || shorter_side < std::max(height, width))) {
    throw ShapeError("fit_image: a shorter side of " + std::to_string(shorter_side) +
                     " needs ResizeMode::Crop and at least the crop's " + std::to_string(height) + " x " +
                     std::to_string(width));
  }
  const bool same_size = image.height == height && image.width == width;
  if (same_size && (shorter_side == 0 || shorter_side == std::min(height, width))) {
    to_planar(image.pixels.data(), image.channels, channels, height * width, out);
    return;
  }
  const std::vector<float> resized = resample(image, height, width, mode, shorter_side);
  to_planar(resized.data(), image.channels, channels, height * width, out);
}

void read_fitted_image(const std::string& path, const ImageFit& fit, uint8_t* out) {
  const Shape& s = fit.shape;
  if (s.size() != 3) throw ShapeError("read_fitted_image: expected a (C, H, W) shape, got " + to_string(s));
  fit_image(read_image(path), s[0], s[1], s[2], fit.resize, out, fit.shorter_side);
}

}  // namespace dptrain
