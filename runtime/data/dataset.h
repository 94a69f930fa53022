// Dataset: labelled samples by index, decoded and normalised on request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"
#include "runtime/data/augment.h"

namespace dptrain {

// How much work Dataset::get does per sample, so that a loader can choose how many threads to use.
enum class LoadCost {
  Copy,    // converts bytes already in memory (idx, cached image folders, hdf5 blocks, synthetic)
  Decode,  // decodes a compressed file on every call (image folders too large for the cache)
};

// A read-only, indexable set of labelled samples. `get` is called from loader threads
// concurrently and must be safe for that.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Shape of one sample, (C, H, W).
  virtual Shape sample_shape() const = 0;
  virtual size_t num_classes() const = 0;
  // Writes sample `index` as num_elements(sample_shape()) normalised floats, and its label.
  virtual void get(size_t index, float* out, int32_t* label) const = 0;
  // One line for the start-up banner, e.g. "idx /usr/share/.../train-images-idx3-ubyte.gz: 60000 x (1, 28, 28)".
  virtual std::string describe() const = 0;
  // Class names by label, when the data set has them (image folders, converted HDF5 files); else empty.
  virtual std::vector<std::string> class_names() const { return {}; }
  virtual LoadCost load_cost() const { return LoadCost::Copy; }
};

// The training and test sets of a run, and the augmentation of training samples.
struct DataSplits {
  std::unique_ptr<Dataset> train;
  std::unique_ptr<Dataset> test;
  // From `data.augment`; null when none is configured. Applied by the loader to training batches only.
  std::shared_ptr<const Augmentation> train_augment;
};

// Builds both sets from the config's `data:` mapping (reads every key it knows; the caller
// calls finish()). `data.type` is idx, synthetic, image_folder (the test set is the validation part,
// split off by `seed`, or `test_dir`) or hdf5. Missing, truncated or mismatched files are DataError
// naming the file.
DataSplits make_datasets(ConfigMap& data, uint64_t seed);

}  // namespace dptrain
