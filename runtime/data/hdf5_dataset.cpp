#include "runtime/data/hdf5_dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"

namespace dptrain {

namespace {

// Target size of one cached block of samples.
constexpr size_t kBlockBytes = 128 << 10;

// Whether `name` (an absolute or root-relative path) is a dataset in `file`; checks each group on the way.
bool is_dataset(hid_t file, const std::string& name) {
  std::string prefix;
  std::stringstream parts(name);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part.empty()) continue;
    prefix += "/" + part;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  if (prefix.empty()) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name2(file, prefix.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_DATASET;
}

herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back("/" + std::string(name));
  return 0;
}

// "/a, /b/c" for the datasets in `file`, or "none".
std::string list_datasets(hid_t file) {
  std::vector<std::string> names;
  H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &names, H5O_INFO_BASIC);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (size_t i = 0; i < names.size() && i < 12; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 12) out += ", ...";
  return out.empty() ? "none" : out;
}

std::vector<hsize_t> dims_of(hid_t dataset) {
  H5Handle space(H5Dget_space(dataset), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::string dims_text(const std::vector<hsize_t>& dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + ")";
}

std::string type_text(hid_t type) {
  const size_t bytes = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * bytes);
    case H5T_FLOAT:
      return "float" + std::to_string(8 * bytes);
    case H5T_STRING:
      return "string";
    default:
      return "a non-numeric type";
  }
}

// The file's root attribute `name` as an integer, if present.
bool read_int_attribute(hid_t file, const char* name, int64_t* value) {
  if (H5Aexists(file, name) <= 0) return false;
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) return false;
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) return false;
  return H5Aread(attr.get(), H5T_NATIVE_INT64, value) >= 0;
}

// The file's root attribute `name` as a list of fixed-length strings, if present and readable. A list of
// variable-length strings (dptrain_data_format 1, h5py's default) is not read: its values live in HDF5's
// global heap, which has no checksum (hdf5_has_variable_length); `*storage` says which it was.
std::vector<std::string> read_strings_attribute(hid_t file, const char* name, Hdf5Strings* storage) {
  constexpr size_t kMaxBytes = 16 << 20;
  std::vector<std::string> out;
  *storage = Hdf5Strings::FixedLength;
  if (H5Aexists(file, name) <= 0) return out;
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  H5Handle type(attr.valid() ? H5Aget_type(attr.get()) : -1, H5Tclose);
  H5Handle space(attr.valid() ? H5Aget_space(attr.get()) : -1, H5Sclose);
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_STRING) return out;
  if (hdf5_has_variable_length(type.get())) {
    *storage = Hdf5Strings::VariableLength;
    return out;
  }
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  const size_t width = H5Tget_size(type.get());
  if (n <= 0 || width == 0 || width > kMaxBytes / static_cast<size_t>(n)) return out;
  std::vector<char> packed(static_cast<size_t>(n) * width);
  if (H5Aread(attr.get(), type.get(), packed.data()) < 0) return out;
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    const char* first = packed.data() + i * width;
    out.emplace_back(first, std::find(first, first + width, '\0'));
  }
  return out;
}

// Refuses a dataset whose declared `logical_bytes` its stored bytes cannot hold: a few hundred kilobytes
// that declare billions of samples (chunks never written, or an extent set beyond the data).
void check_stored(hid_t dataset, size_t logical_bytes, const std::string& where, const std::vector<hsize_t>& dims,
                  size_t file_bytes) {
  size_t stored = 0;
  if (hdf5_storage_holds(dataset, logical_bytes, &stored)) return;
  throw DataError(
      where + " declares shape " + dims_text(dims) + " (" + byte_size_text(logical_bytes) +
      "), but the file stores only " + byte_size_text(stored) + " of it (the file holds " + byte_size_text(file_bytes) +
      "); the file is damaged or was not written completely (write it again, e.g. with dptrain data convert)");
}

std::vector<float> per_channel(const std::vector<float>& v, const char* key, size_t channels,
                               const std::string& where) {
  if (v.size() == channels) return v;
  if (v.size() == 1) return std::vector<float>(channels, v[0]);
  throw DataError("data." + std::string(key) + " has " + std::to_string(v.size()) + " entries but " + where +
                  " holds images of " + std::to_string(channels) + " channels; give 1 entry or one per channel");
}

}  // namespace

Hdf5Dataset::Hdf5Dataset(const Hdf5Source& source, const std::vector<float>& mean, const std::vector<float>& std,
                         size_t num_classes, size_t cache_mb)
    : source_(source) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  try {
    open(mean, std, num_classes, cache_mb);
  } catch (...) {
    images_.close();  // while holding the lock, which is gone by the time members are destroyed
    file_.close();
    throw;
  }
}

void Hdf5Dataset::open(const std::vector<float>& mean, const std::vector<float>& std, size_t num_classes,
                       size_t cache_mb) {
  const std::string& f = source_.file;
  std::error_code ec;
  if (!std::filesystem::exists(f, ec)) throw DataError(f + ": no such file");
  size_t file_bytes = 0;
  std::string why;
  if (!regular_file_size(f, &file_bytes, &why) && !why.empty()) {
    throw DataError(f + ": " + why + "; expected an HDF5 file");
  }
  if (H5Fis_hdf5(f.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw DataError(f + ": not an HDF5 file (dptrain data convert writes one from IDX files or an image folder)");
  }
  file_ = H5Handle(H5Fopen(f.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) throw DataError(f + ": cannot open the HDF5 file (HDF5: " + hdf5_error_message() + ")");

  auto open = [&](const std::string& name, const std::string& key, const char* what) {
    if (!is_dataset(file_.get(), name)) {
      H5Eclear2(H5E_DEFAULT);
      throw DataError(f + ": no dataset '" + name + "' for the " + what + " (datasets in the file: " +
                      list_datasets(file_.get()) + "); set " + key + " to its path inside the file");
    }
    H5Handle d(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) throw DataError(f + ": cannot open dataset '" + name + "' (HDF5: " + hdf5_error_message() + ")");
    return d;
  };
  images_ = open(source_.images, source_.images_key, "images");
  H5Handle labels = open(source_.labels, source_.labels_key, "labels");

  // Images: (N, C, H, W) or (N, H, W), uint8 or float.
  const std::vector<hsize_t> dims = dims_of(images_.get());
  H5Handle image_type(H5Dget_type(images_.get()), H5Tclose);
  const std::string where_images = f + ": dataset '" + source_.images + "'";
  if (dims.size() != 3 && dims.size() != 4) {
    throw DataError(where_images + " has shape " + dims_text(dims) +
                    "; images must be (N, C, H, W) or (N, H, W) (set " + source_.images_key +
                    " to the images, not the labels)");
  }
  const H5T_class_t image_class = H5Tget_class(image_type.get());
  if (image_class == H5T_INTEGER && H5Tget_size(image_type.get()) == 1 &&
      H5Tget_sign(image_type.get()) == H5T_SGN_NONE) {
    pixels_ = Hdf5Pixels::Uint8;
  } else if (image_class == H5T_FLOAT) {
    pixels_ = Hdf5Pixels::Float32;
  } else {
    throw DataError(where_images + " holds " + type_text(image_type.get()) +
                    "; images must be uint8 (pixels 0..255) or float32 (pixel / 255); convert them, e.g. with "
                    "dptrain data convert");
  }
  size_ = dims[0];
  channels_ = dims.size() == 4 ? dims[1] : 1;
  height_ = dims[dims.size() - 2];
  width_ = dims[dims.size() - 1];
  if (channels_ == 0 || height_ == 0 || width_ == 0) {
    throw DataError(where_images + " has an empty sample shape " + dims_text(dims));
  }
  const size_t value_bytes = pixels_ == Hdf5Pixels::Uint8 ? 1 : sizeof(float);
  const size_t sample_bytes =
      checked_bytes({channels_, height_, width_, value_bytes}, "one sample of " + where_images, source_.images_key);
  check_stored(images_.get(), checked_bytes({size_, sample_bytes}, "the images of " + where_images, source_.images_key),
               where_images, dims, file_bytes);

  // Labels: (N) integers, read whole.
  const std::vector<hsize_t> label_dims = dims_of(labels.get());
  H5Handle label_type(H5Dget_type(labels.get()), H5Tclose);
  const std::string where_labels = f + ": dataset '" + source_.labels + "'";
  if (label_dims.size() != 1) {
    throw DataError(where_labels + " has shape " + dims_text(label_dims) +
                    "; labels must be one integer per sample, (N)");
  }
  if (H5Tget_class(label_type.get()) != H5T_INTEGER) {
    throw DataError(where_labels + " holds " + type_text(label_type.get()) + "; labels must be integers");
  }
  if (label_dims[0] != size_) {
    throw DataError(where_images + " holds " + std::to_string(size_) + " images but '" + source_.labels + "' holds " +
                    std::to_string(label_dims[0]) + " labels; they must be the same length (check " +
                    source_.images_key + " and " + source_.labels_key + " name a matching pair)");
  }
  check_stored(labels.get(), checked_bytes({size_, H5Tget_size(label_type.get())}, "the labels", source_.labels_key),
               where_labels, label_dims, file_bytes);
  reserve(checked_bytes({size_, sizeof(int64_t) + sizeof(int32_t)}, "the labels", source_.labels_key),
          "the " + std::to_string(size_) + " labels of " + where_labels, source_.labels_key);
  std::vector<int64_t> raw_labels(size_);
  if (H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw_labels.data()) < 0) {
    throw DataError(where_labels + ": cannot read the labels (HDF5: " + hdf5_error_message() +
                    "); the file may be damaged");
  }

  int64_t file_classes = 0;
  class_names_ = read_strings_attribute(file_.get(), "class_names", &class_name_strings_);
  const bool has_attribute = read_int_attribute(file_.get(), "num_classes", &file_classes);
  H5Eclear2(H5E_DEFAULT);
  constexpr int64_t kMaxClasses = int64_t{1} << 31;
  if (has_attribute && num_classes == 0 && (file_classes <= 0 || file_classes > kMaxClasses)) {
    throw DataError(f + ": the root attribute num_classes is " + std::to_string(file_classes) +
                    "; it must be a class count in 1.." + std::to_string(kMaxClasses) +
                    " (fix the file, or set data.classes to the number of classes)");
  }
  const int64_t max_label = raw_labels.empty() ? 0 : *std::max_element(raw_labels.begin(), raw_labels.end());
  num_classes_ = num_classes > 0 ? num_classes
                 : has_attribute ? static_cast<size_t>(file_classes)
                                 : static_cast<size_t>(std::max<int64_t>(max_label, 0)) + 1;
  labels_.resize(size_);
  for (size_t i = 0; i < size_; ++i) {
    const int64_t l = raw_labels[i];
    if (l < 0 || l >= static_cast<int64_t>(num_classes_)) {
      throw DataError(where_labels + ": label " + std::to_string(l) + " at index " + std::to_string(i) +
                      " is out of range for " + std::to_string(num_classes_) + " classes (labels must be 0.." +
                      std::to_string(num_classes_ - 1) + "; set data.classes if the data set has more)");
    }
    labels_[i] = static_cast<int32_t>(l);
  }
  if (class_names_.size() != num_classes_) class_names_.clear();

  // Blocks: a whole number of the file's chunks along N, about kBlockBytes.
  size_t chunk = 1;
  H5Handle dcpl(H5Dget_create_plist(images_.get()), H5Pclose);
  if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk_dims(dims.size());
    if (H5Pget_chunk(dcpl.get(), static_cast<int>(dims.size()), chunk_dims.data()) >= 0) chunk = chunk_dims[0];
    // A chunk wider than the image, or of a gigabyte, is damage that HDF5 would read past its buffers.
    bool fits = chunk >= 1 && chunk <= (size_t{1} << 30) / std::max<size_t>(1, sample_bytes);
    for (size_t d = 1; d < dims.size(); ++d) fits = fits && chunk_dims[d] >= 1 && chunk_dims[d] <= dims[d];
    if (!fits) {
      std::string shape;
      for (size_t d = 0; d < dims.size(); ++d) shape += (d ? ", " : "") + std::to_string(chunk_dims[d]);
      throw DataError(where_images + ": chunks of (" + shape + ") do not fit the dataset's samples; the file is " +
                      "damaged: convert the data again (dptrain data convert)");
    }
  }
  block_ = std::max<size_t>(1, chunk * std::max<size_t>(1, kBlockBytes / std::max<size_t>(1, chunk * sample_bytes)));
  block_ = std::max<size_t>(1, std::min(block_, size_));
  cache_mb_ = cache_mb;
  max_blocks_ = std::max<size_t>(4, (cache_mb << 20) / (block_ * sample_bytes));

  mean_ = per_channel(mean, "mean", channels_, where_images);
  const std::vector<float> s = per_channel(std, "std", channels_, where_images);
  for (size_t c = 0; c < channels_; ++c) {
    if (!(s[c] > 0.0f) || !std::isfinite(s[c]) || !std::isfinite(mean_[c])) {
      throw DataError(f + ": normalisation needs a finite mean and a std > 0");
    }
    inv_std_.push_back(1.0f / s[c]);
  }
  if (pixels_ == Hdf5Pixels::Uint8) {
    lut_.resize(channels_ * 256);
    for (size_t c = 0; c < channels_; ++c) {
      for (size_t v = 0; v < 256; ++v) {
        lut_[c * 256 + v] = static_cast<float>((static_cast<double>(v) / 255.0 - mean_[c]) / s[c]);
      }
    }
  }
}

Hdf5Dataset::~Hdf5Dataset() {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  images_.close();
  file_.close();
}

Hdf5Dataset::Block Hdf5Dataset::read_block(size_t b) const {
  const size_t first = b * block_;
  const size_t count = std::min(block_, size_ - first);
  const bool u8 = pixels_ == Hdf5Pixels::Uint8;
  const size_t values = channels_ * height_ * width_;
  auto data = std::make_shared<std::vector<uint8_t>>(count * values * (u8 ? 1 : sizeof(float)));

  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  std::vector<hsize_t> extent = dims_of(images_.get());  // (N, ...) as read at construction
  std::vector<hsize_t> start(extent.size(), 0);
  start[0] = first;
  extent[0] = count;
  H5Handle file_space(H5Dget_space(images_.get()), H5Sclose);
  H5Handle memory_space(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), H5Sclose);
  if (!file_space.valid() || !memory_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr) < 0 ||
      H5Dread(images_.get(), u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(),
              H5P_DEFAULT, data->data()) < 0) {
    throw DataError(source_.file + ": cannot read samples " + std::to_string(first) + ".." +
                    std::to_string(first + count - 1) + " of dataset '" + source_.images +
                    "' (HDF5: " + hdf5_error_message() + "); the file may be damaged or truncated");
  }
  blocks_read_.fetch_add(1);
  return data;
}

Hdf5Dataset::Block Hdf5Dataset::block(size_t b) const {
  auto lookup = [&]() -> Block {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(b);
    if (it == cache_.end()) return nullptr;
    recent_.splice(recent_.begin(), recent_, it->second.position);
    return it->second.data;
  };
  if (Block hit = lookup()) return hit;
  // Another thread may be reading the same block: check again once we hold the HDF5 lock.
  std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  if (Block hit = lookup()) return hit;
  Block data = read_block(b);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  recent_.push_front(b);
  cache_[b] = Entry{data, recent_.begin()};
  while (cache_.size() > max_blocks_) {
    cache_.erase(recent_.back());
    recent_.pop_back();
  }
  return data;
}

void Hdf5Dataset::get(size_t index, float* out, int32_t* label) const {
  if (index >= size_) {
    throw DataError(source_.file + ": sample index " + std::to_string(index) + " out of range (size " +
                    std::to_string(size_) + ")");
  }
  const Block data = block(index / block_);
  const size_t plane = height_ * width_, offset = (index % block_) * channels_ * plane;
  if (pixels_ == Hdf5Pixels::Uint8) {
    const uint8_t* src = data->data() + offset;
    for (size_t c = 0; c < channels_; ++c) {
      const float* lut = lut_.data() + c * 256;
      for (size_t p = 0; p < plane; ++p) out[c * plane + p] = lut[src[c * plane + p]];
    }
  } else {
    const float* src = reinterpret_cast<const float*>(data->data()) + offset;
    for (size_t c = 0; c < channels_; ++c) {
      for (size_t p = 0; p < plane; ++p) out[c * plane + p] = (src[c * plane + p] - mean_[c]) * inv_std_[c];
    }
  }
  *label = labels_[index];
}

std::string Hdf5Dataset::describe() const {
  std::ostringstream out;
  const size_t sample_bytes = channels_ * height_ * width_ * (pixels_ == Hdf5Pixels::Uint8 ? 1 : sizeof(float));
  out << "hdf5 " << source_.file << ":" << source_.images << ": " << size_ << " x " << to_string(sample_shape()) << " "
      << (pixels_ == Hdf5Pixels::Uint8 ? "uint8" : "float32") << ", " << num_classes_ << " classes";
  if (!class_names_.empty()) {
    out << " (";
    for (size_t i = 0; i < class_names_.size() && i < 10; ++i) out << (i ? ", " : "") << class_names_[i];
    out << (class_names_.size() > 10 ? ", ...)" : ")");
  } else if (class_name_strings_ == Hdf5Strings::VariableLength) {
    out << " (class names not read: stored as variable-length strings; dptrain data convert writes them as "
           "fixed-length ones)";
  }
  const size_t blocks = (size_ + block_ - 1) / block_;
  char size[64];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(size_ * sample_bytes) / 1e6);
  out << "; read in blocks of " << block_ << " samples into a cache of " << cache_mb_ << " MiB ("
      << (blocks <= max_blocks_ ? "the whole set fits: " : "smaller than the set: blocks are read again; ") << size
      << ")";
  return out.str();
}

}  // namespace dptrain
