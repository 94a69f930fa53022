// SyntheticDataset: a learnable labelled data set computed on the fly, for benchmarks and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"

namespace dptrain {

// Which part of a synthetic data set: the parts share class prototypes but draw their labels and
// noise from different keys, so the test set holds different samples from the training set.
enum class SyntheticSplit : uint64_t { Train = 1, Test = 2 };

// What to generate.
struct SyntheticSpec {
  size_t num_samples = 0;
  Shape sample_shape{1, 28, 28};  // (C, H, W)
  size_t num_classes = 10;
  float noise = 1.0f;             // standard deviation of the per-pixel noise (prototypes have about 1)
  std::vector<float> mean{0.0f};  // per-channel normalisation, length 1 or C: value = (raw - mean) / std
  std::vector<float> std{1.0f};
};

// Sample i of split s is prototype[label] + noise, where label and noise are drawn from
// (seed, s, i) and each class's prototype (a smooth pattern of a few separable waves per channel)
// from (seed, class). Nothing per sample is stored: memory is O(classes * C * (H + W)).
class SyntheticDataset : public Dataset {
 public:
  // Throws ShapeError for a shape that is not (C, H, W) with every dimension > 0, DataError for no
  // classes, negative noise, or a mean/std list of the wrong length or a std <= 0.
  SyntheticDataset(const SyntheticSpec& spec, uint64_t seed, SyntheticSplit split);

  size_t size() const override { return spec_.num_samples; }
  Shape sample_shape() const override { return spec_.sample_shape; }
  size_t num_classes() const override { return spec_.num_classes; }
  void get(size_t index, float* out, int32_t* label) const override;
  std::string describe() const override;

  // The label of sample `index` without generating its pixels.
  int32_t label(size_t index) const;

  // Number of separable waves summed per class and channel.
  static constexpr size_t kWaves = 3;

 private:
  SyntheticSpec spec_;
  uint64_t seed_;
  SyntheticSplit split_;
  size_t channels_, height_, width_;
  std::vector<float> mean_, inv_std_;  // (C)
  // Prototype of (class k, channel c) = sum_w rows_[k][c][w][y] * cols_[k][c][w][x].
  std::vector<float> rows_;  // (classes, C, kWaves, H)
  std::vector<float> cols_;  // (classes, C, kWaves, W)
};

}  // namespace dptrain
