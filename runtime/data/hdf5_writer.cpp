#include "runtime/data/hdf5_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/data/hdf5_util.h"

namespace dptrain {

namespace fs = std::filesystem;

namespace {

constexpr size_t kChunkBytes = 128 << 10;
constexpr size_t kLabelChunk = 16384;

// Whether an attribute holds one value or a list.
enum class Hdf5Shape { Scalar, List };

// Where errors of one write are reported: the final name, since the temporary one is never left behind.
struct WriteTarget {
  std::string path;
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(path + ": " + what + " (HDF5: " + hdf5_error_message() + "); nothing was written to " + path);
  }
};

H5Handle checked(hid_t id, H5Handle::Closer closer, const WriteTarget& target, const std::string& what) {
  if (id < 0) target.fail("cannot " + what);
  return H5Handle(id, closer);
}

// A chunked, Fletcher-32 checksummed dataset of `type` with `dims`, extendible along the first dimension.
H5Handle create_dataset(hid_t group, const char* name, hid_t type, const std::vector<hsize_t>& dims,
                        std::vector<hsize_t> chunk, const WriteTarget& target) {
  std::vector<hsize_t> max_dims = dims;
  max_dims[0] = H5S_UNLIMITED;
  H5Handle space = checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()), H5Sclose,
                           target, "create the data space of " + std::string(name));
  H5Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, target, "create a property list");
  if (H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 || H5Pset_fletcher32(dcpl.get()) < 0) {
    target.fail("set chunking and checksums for " + std::string(name));
  }
  return checked(H5Dcreate2(group, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose, target,
                 "create dataset " + std::string(name));
}

void write_attribute(hid_t object, const char* name, hid_t type, hid_t space, const void* data,
                     const WriteTarget& target) {
  H5Handle attr = checked(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, target,
                          "create attribute " + std::string(name));
  if (H5Awrite(attr.get(), type, data) < 0) target.fail("write attribute " + std::string(name));
}

void write_int_attribute(hid_t object, const char* name, int64_t value, const WriteTarget& target) {
  H5Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, target, "create a scalar space");
  write_attribute(object, name, H5T_NATIVE_INT64, space.get(), &value, target);
}

// Fixed-length, null-padded UTF-8 strings, as many bytes as the longest value (at least 1): the values sit
// in the attribute, inside the checksummed object header. Variable-length ones would live in HDF5's
// global heap, which has no checksum (runtime/data/hdf5_util.h).
void write_strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                             Hdf5Shape shape, const WriteTarget& target) {
  size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  H5Handle type = checked(H5Tcopy(H5T_C_S1), H5Tclose, target, "create a string type");
  if (H5Tset_size(type.get(), width) < 0 || H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    target.fail("set up a string type of " + std::to_string(width) + " bytes");
  }
  const hsize_t n = values.size();
  H5Handle space = checked(shape == Hdf5Shape::Scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                           H5Sclose, target, "create a string space");
  std::vector<char> packed(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::copy(values[i].begin(), values[i].end(), packed.begin() + i * width);
  write_attribute(object, name, type.get(), space.get(), packed.data(), target);
}

// Creates GROUP/images and GROUP/labels from `data` and fills them, `chunk` samples at a time.
void write_split(hid_t file, const char* group_name, const Dataset& data, const char* what, size_t chunk,
                 const WriteTarget& target) {
  H5Handle group = checked(H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, target,
                           "create group " + std::string(group_name));
  const Shape s = data.sample_shape();
  const size_t n = data.size(), per_sample = num_elements(s);
  H5Handle images =
      create_dataset(group.get(), "images", H5T_STD_U8LE, {n, s[0], s[1], s[2]}, {chunk, s[0], s[1], s[2]}, target);
  H5Handle labels =
      create_dataset(group.get(), "labels", H5T_STD_I32LE, {n}, {std::clamp<hsize_t>(n, 1, kLabelChunk)}, target);

  std::vector<float> values(chunk * per_sample);
  std::vector<uint8_t> bytes(chunk * per_sample);
  std::vector<int32_t> all_labels(n);
  for (size_t first = 0; first < n; first += chunk) {
    const size_t count = std::min(chunk, n - first);
    for (size_t i = 0; i < count; ++i) data.get(first + i, values.data() + i * per_sample, &all_labels[first + i]);
    for (size_t j = 0; j < count * per_sample; ++j) {
      const float scaled = values[j] * 255.0f;
      const long byte = std::lround(scaled);
      if (!(std::fabs(scaled - static_cast<float>(byte)) <= 1e-3f) || byte < 0 || byte > 255) {
        throw DataError(target.path + ": sample " + std::to_string(first + j / per_sample) + " of the " + what +
                        " set is not 8-bit image data (value " + std::to_string(values[j]) +
                        " is not a pixel / 255); only image data (idx, image_folder, uint8 hdf5) can be "
                        "converted; nothing was written to " +
                        target.path);
      }
      bytes[j] = static_cast<uint8_t>(byte);
    }
    const hsize_t start[4] = {first, 0, 0, 0};
    const hsize_t extent[4] = {count, s[0], s[1], s[2]};
    H5Handle file_space = checked(H5Dget_space(images.get()), H5Sclose, target, "get the images' data space");
    H5Handle memory_space = checked(H5Screate_simple(4, extent, nullptr), H5Sclose, target, "create a data space");
    if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr) < 0 ||
        H5Dwrite(images.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT, bytes.data()) < 0) {
      target.fail("cannot write " + std::string(what) + " images " + std::to_string(first) + ".." +
                  std::to_string(first + count - 1));
    }
  }
  if (n > 0 && H5Dwrite(labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, all_labels.data()) < 0) {
    target.fail("cannot write the " + std::string(what) + " labels");
  }
  if (!images.close() || !labels.close() || !group.close())
    target.fail("cannot finish the " + std::string(what) + " set");
}

// Writes the whole file at `temp`; everything is closed when it returns.
void write_file(const std::string& temp, const Dataset& train, const Dataset& test, size_t chunk,
                const std::string& source, const WriteTarget& target) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  const H5Handle fapl = hdf5_checksummed_file_access();
  if (!fapl.valid()) target.fail("cannot set up the HDF5 1.10 file format");
  H5Handle file = checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose, target,
                          "create the temporary file " + temp);
  write_split(file.get(), "/train", train, "training", chunk, target);
  write_split(file.get(), "/test", test, "test", chunk, target);
  write_int_attribute(file.get(), "num_classes",
                      static_cast<int64_t>(std::max(train.num_classes(), test.num_classes())), target);
  const std::vector<std::string> names = train.class_names();
  if (!names.empty()) write_strings_attribute(file.get(), "class_names", names, Hdf5Shape::List, target);
  write_strings_attribute(file.get(), "source", {source}, Hdf5Shape::Scalar, target);
  write_int_attribute(file.get(), "dptrain_data_format", kHdf5DataFormat, target);
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0 || !file.close()) target.fail("cannot finish the file");
}

}  // namespace

Hdf5WriteSummary write_hdf5_splits(const std::string& path, const Dataset& train, const Dataset& test,
                                   const Hdf5WriteOptions& options) {
  const WriteTarget target{path};
  const fs::path out(path);
  const fs::path folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  if (out.filename().empty()) throw DataError(path + ": needs a file name, not a folder");
  if (!fs::is_directory(folder, ec)) throw DataError(path + ": the folder " + folder.string() + " does not exist");
  if (fs::exists(out, ec)) {
    if (fs::is_directory(out, ec)) throw DataError(path + ": is a folder; give a file name for the output");
    if (options.overwrite == Overwrite::No) {
      throw DataError(path +
                      ": already exists and was left as it is (choose another name, or replace it with --force)");
    }
  }
  const Shape shape = train.sample_shape();
  if (shape.size() != 3 || test.sample_shape() != shape) {
    throw DataError(path + ": training samples of " + to_string(shape) + " and test samples of " +
                    to_string(test.sample_shape()) + " cannot be stored together; both must be the same (C, H, W)");
  }
  size_t chunk = options.chunk_samples;
  if (chunk == 0) chunk = std::max<size_t>(1, kChunkBytes / num_elements(shape));
  chunk = std::max<size_t>(1, std::min(chunk, std::max(train.size(), test.size())));

  try {
    // Created exclusively (a planted file or symlink at the name is never opened) and then filled by HDF5's
    // truncating open; readable as the umask allows, like any file made for others to read.
    PrivateTempFile temp(path, FileAccess::Umask);
    temp.close();
    write_file(temp.path(), train, test, chunk, options.source, target);
    try {
      temp.publish();
    } catch (const Error& e) {
      throw DataError(path + ": cannot move the finished file into place (" + e.what() + "); nothing was written");
    }
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    throw DataError(std::string(e.what()) + "; nothing was written to " + path);
  }
  // Make the rename itself durable; the data is already safe, so a folder that cannot be synced is no error.
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  Hdf5WriteSummary summary;
  summary.train = train.size();
  summary.test = test.size();
  summary.chunk_samples = chunk;
  summary.file_bytes = fs::file_size(out, ec);
  return summary;
}

}  // namespace dptrain
