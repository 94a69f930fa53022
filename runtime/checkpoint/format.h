// Pieces shared by the checkpoint writer and reader (runtime/checkpoint_*.cpp); not a public interface.
#pragma once

#include <hdf5.h>

#include <string>

#include "runtime/data/hdf5_util.h"

namespace dptrain::checkpoint_detail {

// Names of the objects and attributes of the layout described in runtime/checkpoint/checkpoint.h.
inline constexpr char kConfigDataset[] = "config";
inline constexpr char kMetricsDataset[] = "metrics";
inline constexpr char kParametersGroup[] = "parameters";
inline constexpr char kBuffersGroup[] = "buffers";
inline constexpr char kOptimizerGroup[] = "optimizer";
inline constexpr char kMasksGroup[] = "masks";  // only in checkpoints of runs that prune
inline constexpr char kQuantizationGroup[] = "quantization";  // only in quantized models

// The type of a dataset or attribute as `dptrain inspect` and messages name it: "float32", "uint64", "string".
std::string dtype_name(hid_t type);

// What went wrong inside HDF5, from its error stack: the API function that failed and the innermost
// description, e.g. "H5Dread: data error detected by Fletcher32 checksum". Clears the stack.
std::string hdf5_failure();

// File access properties of every checkpoint: the HDF5 1.10 format (checksummed metadata), every object
// closed with the file, and file locking that is skipped where the file system lacks it.
H5Handle checkpoint_file_access();

// Group creation properties that track and index link creation order.
H5Handle ordered_group_creation();

}  // namespace dptrain::checkpoint_detail
