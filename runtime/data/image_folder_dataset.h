// ImageFolder: labelled PNG and JPEG images in one sub-folder per class, fitted to one sample shape.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/data/image_resize.h"
#include "runtime/data/pixel_normalization.h"

namespace dptrain {

// What to do with an image file that cannot be read or decoded.
enum class BadImagePolicy {
  Fail,  // stop with a DataError naming the file and the decoder's message
  Skip,  // warn once on stderr, naming the file, and leave it out
};

// How an image folder is read: what every image is fitted to (ImageFit: shape, resize, shorter_side), and
// the rest.
struct ImageFolderOptions : ImageFit {
  BadImagePolicy on_bad_image = BadImagePolicy::Fail;
  size_t cache_mb = 1024;  // keep the fitted images as bytes when they fit in this many MiB; 0: never
  size_t threads = 0;      // threads decoding at construction; 0: one per core
};

// Every image under DIR/CLASS/ (searched recursively; names ending .png, .jpg or .jpeg in any case; names
// starting with '.' are ignored). Classes are the sub-folders in sorted (byte-wise) order, numbered from 0;
// images are ordered by class, then path. The format is recognised from the file's bytes, not its name.
// Construction decodes every file once, on several threads, so that bad files are known before training:
// the fitted (C, H, W) bytes are kept when they fit in the cache budget, and decoded again on each
// pixels() call otherwise. Read-only after construction, so safe to share between threads.
class ImageFolder {
 public:
  // Throws DataError for a missing folder, no class folders, a class folder with no images, a bad image
  // under BadImagePolicy::Fail, or no readable image at all; ShapeError for a shape that is not (1|3, H, W).
  ImageFolder(std::string dir, const ImageFolderOptions& options);

  const std::string& dir() const { return dir_; }
  const ImageFolderOptions& options() const { return options_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Readable images.
  size_t size() const { return paths_.size(); }
  int32_t label(size_t i) const { return labels_[i]; }
  const std::string& path(size_t i) const { return paths_[i]; }
  // Writes image i fitted to the shape, (C, H, W) bytes, to `out`.
  void pixels(size_t i, uint8_t* out) const;
  // Image i's bytes in the cache, or null when images are not cached.
  const uint8_t* cached_pixels(size_t i) const;
  bool cached() const { return !cache_.empty(); }
  size_t cache_bytes() const { return cache_.size(); }
  // Files left out under BadImagePolicy::Skip, with why.
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  void scan();
  void decode_all();

  std::string dir_;
  ImageFolderOptions options_;
  size_t sample_bytes_ = 0;
  std::vector<std::string> class_names_;
  std::vector<std::string> paths_;  // (N) by class, then path
  std::vector<int32_t> labels_;     // (N)
  std::vector<uint8_t> cache_;      // (N, C, H, W) when cached, else empty
  std::vector<std::string> skipped_;
};

// Images of an ImageFolder, by index into it (ascending).
struct FolderSplit {
  std::vector<uint32_t> train;
  std::vector<uint32_t> validation;
};

// Splits every class on its own: the class's images, in path order, are permuted by an Rng keyed by
// hash_key(seed, RngStream::Split, class), and the first round(fraction * n) of them, but at most n - 1,
// are held out for validation. Deterministic, disjoint, covering every image, stratified by class.
FolderSplit split_image_folder(const ImageFolder& folder, double validation_fraction, uint64_t seed);

// Which images of an ImageFolder a data set holds, for describe().
enum class FolderPart { Train, Validation, Whole };

// A set of images of an ImageFolder as a Dataset; value = (pixel / 255 - mean[c]) / std[c].
class ImageFolderDataset : public Dataset {
 public:
  // `members` index into `folder`; `other_part` is the size of the complementary part (for describe()).
  // `mean` and `std` hold 1 or C entries. Throws DataError for a bad normalisation or member index.
  ImageFolderDataset(std::shared_ptr<const ImageFolder> folder, std::vector<uint32_t> members, FolderPart part,
                     size_t other_part, const std::vector<float>& mean, const std::vector<float>& std);

  size_t size() const override { return members_.size(); }
  Shape sample_shape() const override { return folder_->options().shape; }
  size_t num_classes() const override { return folder_->class_names().size(); }
  void get(size_t index, float* out, int32_t* label) const override;
  // e.g. "image_folder DIR: 10 classes (airplane, ...), 800 train / 200 validation of (3, 32, 32), training
  // part; shorter side resized and centre-cropped; decoded images cached in memory (2.5 MB)"
  std::string describe() const override;
  std::vector<std::string> class_names() const override { return folder_->class_names(); }
  LoadCost load_cost() const override { return folder_->cached() ? LoadCost::Copy : LoadCost::Decode; }

  const ImageFolder& folder() const { return *folder_; }
  // Index into the folder of sample i.
  uint32_t member(size_t i) const { return members_[i]; }

 private:
  std::shared_ptr<const ImageFolder> folder_;
  std::vector<uint32_t> members_;
  FolderPart part_;
  size_t other_part_;
  PixelNormalization normalization_;
};

}  // namespace dptrain
