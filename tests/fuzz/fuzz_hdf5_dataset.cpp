// Fuzz target: Hdf5Dataset, the HDF5 data-set reader: the input opened as an HDF5 file, the training
// set's images and labels checked, and a few samples read through the block cache.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/data/hdf5_dataset.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dptrain::fuzz::TempFile file(data, size);
  dptrain::Hdf5Source source;
  source.file = file.path();
  try {
    const dptrain::Hdf5Dataset set(source, {0.5f}, {0.25f}, 0, 4);
    const size_t elements = dptrain::num_elements(set.sample_shape());
    if (elements > (size_t{1} << 22)) return 0;  // the harness's own buffer below stays small
    std::vector<float> sample(elements);
    int32_t label = 0;
    for (size_t i = 0; i < std::min<size_t>(set.size(), 3); ++i) set.get(i, sample.data(), &label);
    if (set.size() > 3) set.get(set.size() - 1, sample.data(), &label);
    (void)set.describe();
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  return 0;
}
