// Hdf5Dataset: labelled images read from an HDF5 file in blocks of samples, with a bounded block cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/data/hdf5_util.h"

namespace dptrain {

// Where one set lives: a file and the two datasets inside it.
struct Hdf5Source {
  std::string file;
  std::string images = "/train/images";  // (N, C, H, W) or (N, H, W): uint8 pixels, or float32 pixel / 255
  std::string labels = "/train/labels";  // (N) integers in [0, classes)
  // The config keys that name the two datasets, for messages ("data.train_images").
  std::string images_key = "images";
  std::string labels_key = "labels";
};

// How a string attribute is stored: fixed-length strings are read, variable-length ones are not (their
// values sit in HDF5's global heap, which has no checksum).
enum class Hdf5Strings { FixedLength, VariableLength };

// Element type of the images in the file.
enum class Hdf5Pixels { Uint8, Float32 };

// Samples of an HDF5 file, read lazily: sample i comes from a block of consecutive samples (a whole
// number of the file's chunks, about 128 KiB) read with one hyperslab H5Dread and kept in an LRU cache
// of at most `cache_mb` MiB (at least 4 blocks), so most gets never touch HDF5 and a set that fits is
// read once. Labels are read whole at construction and checked. Uint8 images are normalised as
// (pixel / 255 - mean[c]) / std[c], float32 ones as (value - mean[c]) / std[c]. Every HDF5 call holds
// hdf5_mutex(), so get() is safe from many threads.
class Hdf5Dataset : public Dataset {
 public:
  // `num_classes` 0: the file's root attribute num_classes if present, else the largest label + 1.
  // `mean` and `std` hold 1 or C entries. Throws DataError naming the file and dataset, and the fix, for
  // a missing or unreadable file, a missing dataset, a wrong rank or element type, a length mismatch,
  // or a label out of range. An empty set (N = 0) is allowed.
  Hdf5Dataset(const Hdf5Source& source, const std::vector<float>& mean, const std::vector<float>& std,
              size_t num_classes, size_t cache_mb);
  ~Hdf5Dataset() override;
  Hdf5Dataset(const Hdf5Dataset&) = delete;
  Hdf5Dataset& operator=(const Hdf5Dataset&) = delete;

  size_t size() const override { return size_; }
  Shape sample_shape() const override { return {channels_, height_, width_}; }
  size_t num_classes() const override { return num_classes_; }
  void get(size_t index, float* out, int32_t* label) const override;
  // e.g. "hdf5 cifar.h5:/train/images: 40000 x (3, 32, 32) uint8, 10 classes (airplane, ...); read in
  // blocks of 85 samples into a cache of 1024 MiB (the whole set fits: 122.9 MB)"
  std::string describe() const override;
  std::vector<std::string> class_names() const override { return class_names_; }

  const Hdf5Source& source() const { return source_; }
  Hdf5Pixels pixels() const { return pixels_; }
  size_t block_samples() const { return block_; }
  // Blocks read from the file so far.
  size_t blocks_read() const { return blocks_read_.load(); }

 private:
  using Block = std::shared_ptr<const std::vector<uint8_t>>;
  // The constructor's work, under hdf5_mutex().
  void open(const std::vector<float>& mean, const std::vector<float>& std, size_t num_classes, size_t cache_mb);
  Block block(size_t b) const;
  Block read_block(size_t b) const;

  Hdf5Source source_;
  H5Handle file_;
  H5Handle images_;
  Hdf5Pixels pixels_ = Hdf5Pixels::Uint8;
  size_t size_ = 0, channels_ = 1, height_ = 0, width_ = 0;
  size_t block_ = 1;       // samples per block
  size_t max_blocks_ = 4;  // cache capacity
  size_t cache_mb_ = 0;
  size_t num_classes_ = 0;
  std::vector<int32_t> labels_;  // (N)
  std::vector<std::string> class_names_;  // from the root attribute class_names, when fixed-length strings
  Hdf5Strings class_name_strings_ = Hdf5Strings::FixedLength;  // VariableLength: class_names were not read
  std::vector<float> lut_;      // (C, 256) for uint8 images
  std::vector<float> mean_;     // (C)
  std::vector<float> inv_std_;  // (C)

  mutable std::mutex cache_mutex_;    // guards the two members below; taken after hdf5_mutex(), never before
  mutable std::list<size_t> recent_;  // block numbers, most recently used first
  struct Entry {
    Block data;
    std::list<size_t>::iterator position;
  };
  mutable std::unordered_map<size_t, Entry> cache_;
  mutable std::atomic<size_t> blocks_read_{0};
};

}  // namespace dptrain
