// IdxDataset: an image/label pair of IDX files held in memory as bytes, normalised on get().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/data/idx.h"

namespace dptrain {

// Labelled grey-scale images from an IDX pair. Samples are (1, H, W) floats,
// value = (pixel / 255 - mean) / std; the uint8 pixels stay in memory (60000 x 28 x 28 = 47 MB).
class IdxDataset : public Dataset {
 public:
  // `images` must be (N, H, W), `labels` (N); both are checked against each other and every label
  // against `num_classes` (0: max label + 1). `std` must be > 0. `limit` > 0 keeps only the first
  // `limit` samples (it must not exceed N). Throws DataError naming the file(s).
  IdxDataset(IdxArray images, IdxArray labels, float mean, float std, size_t num_classes, size_t limit = 0);
  // Reads both files with read_idx, then as above.
  static std::unique_ptr<IdxDataset> load(const std::string& images_path, const std::string& labels_path, float mean,
                                          float std, size_t num_classes, size_t limit = 0);

  size_t size() const override { return size_; }
  Shape sample_shape() const override { return {1, height_, width_}; }
  size_t num_classes() const override { return num_classes_; }
  void get(size_t index, float* out, int32_t* label) const override;
  std::string describe() const override;

  const std::string& images_file() const { return images_file_; }
  const std::string& labels_file() const { return labels_file_; }

 private:
  std::string images_file_;
  std::string labels_file_;
  size_t size_ = 0;
  size_t height_ = 0;
  size_t width_ = 0;
  size_t num_classes_ = 0;
  std::vector<uint8_t> pixels_;   // (N, H, W)
  std::vector<uint8_t> labels_;   // (N)
  std::array<float, 256> lut_{};  // normalised value of each byte
};

}  // namespace dptrain
