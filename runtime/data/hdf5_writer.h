// write_hdf5_splits: a training and a test set written as one checksummed HDF5 file, atomically.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/data/dataset.h"

namespace dptrain {

// The root attribute dptrain_data_format of the files write_hdf5_splits writes. 1: variable-length
// strings, the default HDF5 format; 2: fixed-length strings and the HDF5 1.10 format.
inline constexpr int64_t kHdf5DataFormat = 2;

// Whether an existing output file may be replaced.
enum class Overwrite { No, Yes };

// How write_hdf5_splits lays out its file.
struct Hdf5WriteOptions {
  size_t chunk_samples = 0;  // samples per chunk of the image datasets; 0: about 128 KiB per chunk
  Overwrite overwrite = Overwrite::No;
  std::string source;  // what the data came from, stored as the root attribute "source"
};

// What write_hdf5_splits wrote.
struct Hdf5WriteSummary {
  size_t train = 0;
  size_t test = 0;
  size_t chunk_samples = 0;
  uint64_t file_bytes = 0;
};

// Writes `train` and `test` to `path` as
//   /train/images  uint8 (N, C, H, W)    /train/labels  int32 (N)
//   /test/images   uint8 (M, C, H, W)    /test/labels   int32 (M)
// with root attributes num_classes (int64), class_names (fixed-length UTF-8 strings, when the training
// set has names), source (a fixed-length string) and dptrain_data_format (kHdf5DataFormat). Every
// dataset is chunked and Fletcher-32 checksummed; the first dimension is extendible. The file is in
// the HDF5 1.10 format, so its metadata is checksummed too (hdf5_checksummed_file_access). Both sets must come normalised with mean 0 and std 1,
// so that get() returns pixel / 255: every value is checked and stored as the byte it came from.
//
// The file is written as ".NAME.tmp-PID" in the same folder, flushed, fsynced and renamed over `path`,
// so a failure (a bad sample, a full disk) leaves no partial output and never damages an existing file.
// Throws DataError (naming the file) for an existing `path` with Overwrite::No, a missing folder, data
// that is not 8-bit images, mismatched sample shapes, or any HDF5 or file system failure.
Hdf5WriteSummary write_hdf5_splits(const std::string& path, const Dataset& train, const Dataset& test,
                                   const Hdf5WriteOptions& options);

}  // namespace dptrain
