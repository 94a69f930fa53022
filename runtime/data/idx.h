// IDX files (the MNIST format): a big-endian header, then unsigned bytes; gzipped or plain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace dptrain {

// The contents of one IDX file of unsigned bytes (data type 0x08).
struct IdxArray {
  std::string file;           // the path it was read from, for error messages
  Shape dims;                 // from the header, outermost first: (N, H, W) images or (N) labels
  std::vector<uint8_t> data;  // num_elements(dims) bytes, row-major
};

// Reads an IDX file. Gzip is detected by its magic bytes (1f 8b), not by the file name.
// Throws DataError naming the file for a missing file, a corrupt gzip stream, a bad magic,
// a data type other than 0x08, or a payload longer or shorter than the header promises.
IdxArray read_idx(const std::string& path);

// Decodes IDX bytes already in memory (decompressed); `file` only names them in errors.
IdxArray parse_idx(const std::string& file, std::vector<uint8_t> bytes);

// What to tell a user whose data file is missing: for the default Fashion-MNIST folder the
// package to install, otherwise an empty string.
std::string idx_install_hint(const std::string& path);

}  // namespace dptrain
