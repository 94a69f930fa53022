#include "runtime/data/idx_dataset.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/errors.h"

namespace dptrain {

IdxDataset::IdxDataset(IdxArray images, IdxArray labels, float mean, float std, size_t num_classes, size_t limit)
    : images_file_(std::move(images.file)), labels_file_(std::move(labels.file)) {
  if (images.dims.size() != 3) {
    throw DataError(images_file_ + ": expected an IDX image file with 3 dimensions (N, H, W), found " +
                    std::to_string(images.dims.size()) + " dimensions " + to_string(images.dims));
  }
  if (labels.dims.size() != 1) {
    throw DataError(labels_file_ + ": expected an IDX label file with 1 dimension (N), found " +
                    std::to_string(labels.dims.size()) + " dimensions " + to_string(labels.dims));
  }
  const size_t n = images.dims[0];
  if (labels.dims[0] != n) {
    throw DataError(images_file_ + " holds " + std::to_string(n) + " images but " + labels_file_ + " holds " +
                    std::to_string(labels.dims[0]) + " labels; they must be a matching pair");
  }
  height_ = images.dims[1];
  width_ = images.dims[2];
  if (height_ == 0 || width_ == 0) {
    throw DataError(images_file_ + ": images have an empty size " + to_string(images.dims));
  }
  if (limit > n) {
    throw DataError(images_file_ + ": " + std::to_string(limit) + " samples requested, but the file holds only " +
                    std::to_string(n));
  }
  size_ = limit > 0 ? limit : n;
  if (!(std > 0.0f) || !std::isfinite(std) || !std::isfinite(mean)) {
    throw DataError(images_file_ + ": normalisation needs a finite mean and a std > 0 (got mean " +
                    std::to_string(mean) + ", std " + std::to_string(std) + ")");
  }

  pixels_ = std::move(images.data);
  labels_ = std::move(labels.data);
  pixels_.resize(size_ * height_ * width_);
  labels_.resize(size_);
  pixels_.shrink_to_fit();
  labels_.shrink_to_fit();

  const size_t max_label = labels_.empty() ? 0 : *std::max_element(labels_.begin(), labels_.end());
  num_classes_ = num_classes > 0 ? num_classes : max_label + 1;
  if (max_label >= num_classes_) {
    const size_t at = static_cast<size_t>(std::find(labels_.begin(), labels_.end(), max_label) - labels_.begin());
    throw DataError(labels_file_ + ": label " + std::to_string(max_label) + " at index " + std::to_string(at) +
                    " is out of range for " + std::to_string(num_classes_) + " classes (labels must be 0.." +
                    std::to_string(num_classes_ - 1) + "; set data.classes if the data set has more)");
  }

  for (size_t v = 0; v < lut_.size(); ++v) {
    lut_[v] = static_cast<float>((static_cast<double>(v) / 255.0 - mean) / std);
  }
}

std::unique_ptr<IdxDataset> IdxDataset::load(const std::string& images_path, const std::string& labels_path, float mean,
                                             float std, size_t num_classes, size_t limit) {
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  return std::make_unique<IdxDataset>(std::move(images), std::move(labels), mean, std, num_classes, limit);
}

void IdxDataset::get(size_t index, float* out, int32_t* label) const {
  if (index >= size_) {
    throw DataError(images_file_ + ": sample index " + std::to_string(index) + " out of range (size " +
                    std::to_string(size_) + ")");
  }
  const size_t pixels = height_ * width_;
  const uint8_t* src = pixels_.data() + index * pixels;
  for (size_t i = 0; i < pixels; ++i) out[i] = lut_[src[i]];
  *label = static_cast<int32_t>(labels_[index]);
}

std::string IdxDataset::describe() const {
  return "idx " + images_file_ + ": " + std::to_string(size_) + " x " + to_string(sample_shape()) + ", " +
         std::to_string(num_classes_) + " classes";
}

}  // namespace dptrain
