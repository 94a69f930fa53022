#include "runtime/data/synthetic_dataset.h"

#include <cmath>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"

namespace dptrain {

namespace {

constexpr uint64_t kPrototypeSalt = 0;  // distinct from every SyntheticSplit value
constexpr double kTwoPi = 6.283185307179586;

uint64_t sample_key(uint64_t seed, SyntheticSplit split, size_t index) {
  return hash_key(seed, static_cast<uint64_t>(RngStream::Synthetic), static_cast<uint64_t>(split), index);
}

std::vector<float> per_channel(const std::vector<float>& values, size_t channels, const char* name) {
  if (values.size() == 1) return std::vector<float>(channels, values[0]);
  if (values.size() == channels) return values;
  throw DataError("synthetic data set: " + std::string(name) + " has " + std::to_string(values.size()) +
                  " entries; expected 1 or one per channel (" + std::to_string(channels) + ")");
}

}  // namespace

SyntheticDataset::SyntheticDataset(const SyntheticSpec& spec, uint64_t seed, SyntheticSplit split)
    : spec_(spec), seed_(seed), split_(split) {
  const Shape& s = spec_.sample_shape;
  if (s.size() != 3 || s[0] == 0 || s[1] == 0 || s[2] == 0) {
    throw ShapeError("synthetic data set: sample shape must be (C, H, W) with every dimension > 0, got " +
                     to_string(s));
  }
  if (spec_.num_classes == 0) throw DataError("synthetic data set: needs at least 1 class");
  if (!(spec_.noise >= 0.0f) || !std::isfinite(spec_.noise)) {
    throw DataError("synthetic data set: noise must be >= 0, got " + std::to_string(spec_.noise));
  }
  channels_ = s[0];
  height_ = s[1];
  width_ = s[2];
  mean_ = per_channel(spec_.mean, channels_, "mean");
  const std::vector<float> std = per_channel(spec_.std, channels_, "std");
  for (float v : std) {
    if (!(v > 0.0f) || !std::isfinite(v)) {
      throw DataError("synthetic data set: std must be > 0, got " + std::to_string(v));
    }
    inv_std_.push_back(1.0f / v);
  }

  // Each wave is a * cos(2 pi fy y / H + py) * cos(2 pi fx x / W + px) with frequencies of 0.5 to
  // 3.5 cycles per image and random phases; a = sqrt(4 / kWaves) gives the sum a variance of about 1.
  const double amplitude = std::sqrt(4.0 / kWaves);
  rows_.resize(spec_.num_classes * channels_ * kWaves * height_);
  cols_.resize(spec_.num_classes * channels_ * kWaves * width_);
  for (size_t k = 0; k < spec_.num_classes; ++k) {
    Rng rng(hash_key(seed_, static_cast<uint64_t>(RngStream::Synthetic), kPrototypeSalt, k));
    for (size_t cw = 0; cw < channels_ * kWaves; ++cw) {
      const double fy = 0.5 + 3.0 * rng.uniform(), py = kTwoPi * rng.uniform();
      const double fx = 0.5 + 3.0 * rng.uniform(), px = kTwoPi * rng.uniform();
      float* row = rows_.data() + (k * channels_ * kWaves + cw) * height_;
      float* col = cols_.data() + (k * channels_ * kWaves + cw) * width_;
      for (size_t y = 0; y < height_; ++y) {
        row[y] = static_cast<float>(amplitude * std::cos(kTwoPi * fy * (y + 0.5) / height_ + py));
      }
      for (size_t x = 0; x < width_; ++x) {
        col[x] = static_cast<float>(std::cos(kTwoPi * fx * (x + 0.5) / width_ + px));
      }
    }
  }
}

int32_t SyntheticDataset::label(size_t index) const {
  Rng rng(sample_key(seed_, split_, index));
  return static_cast<int32_t>(rng.below(spec_.num_classes));
}

void SyntheticDataset::get(size_t index, float* out, int32_t* label) const {
  if (index >= spec_.num_samples) {
    throw DataError("synthetic data set: sample index " + std::to_string(index) + " out of range (size " +
                    std::to_string(spec_.num_samples) + ")");
  }
  Rng rng(sample_key(seed_, split_, index));
  const size_t k = rng.below(spec_.num_classes);  // first draw: the label, as in label()
  *label = static_cast<int32_t>(k);
  // Uniform noise in [-sqrt(3), sqrt(3)) has standard deviation 1.
  const float noise_scale = 2.0f * std::sqrt(3.0f) * spec_.noise;
  for (size_t c = 0; c < channels_; ++c) {
    const float* rows = rows_.data() + (k * channels_ + c) * kWaves * height_;
    const float* cols = cols_.data() + (k * channels_ + c) * kWaves * width_;
    const float mean = mean_[c], inv_std = inv_std_[c];
    for (size_t y = 0; y < height_; ++y) {
      float* dst = out + (c * height_ + y) * width_;
      for (size_t x = 0; x < width_; ++x) {
        float v = 0.0f;
        for (size_t w = 0; w < kWaves; ++w) v += rows[w * height_ + y] * cols[w * width_ + x];
        v += (rng.uniform() - 0.5f) * noise_scale;
        dst[x] = (v - mean) * inv_std;
      }
    }
  }
}

std::string SyntheticDataset::describe() const {
  std::ostringstream out;
  out << "synthetic " << (split_ == SyntheticSplit::Train ? "train" : "test") << ": " << spec_.num_samples << " x "
      << to_string(spec_.sample_shape) << ", " << spec_.num_classes << " classes, noise " << spec_.noise;
  return out.str();
}

}  // namespace dptrain
