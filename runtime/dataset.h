// Dataset: labelled samples by index, decoded and normalised on request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/config_map.h"
#include "runtime/tensor.h"

namespace dptrain {

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
};

// The training and test sets of a run.
struct DataSplits {
  std::unique_ptr<Dataset> train;
  std::unique_ptr<Dataset> test;
};

// Builds both sets from the config's `data:` mapping (reads every key it knows; the caller
// calls finish()). Missing, truncated or mismatched files are DataError naming the file.
DataSplits make_datasets(ConfigMap& data, uint64_t seed);

}  // namespace dptrain
