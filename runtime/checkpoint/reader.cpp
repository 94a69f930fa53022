// The checked reads of a checkpoint file (reader.h), and the checks that read the whole file:
// verify_checkpoint (every dataset, so every checksum) and checkpoint_layout (every object).
#include "runtime/checkpoint/reader.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <mutex>

#include "runtime/checkpoint/format.h"
#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"

namespace dptrain {
namespace checkpoint_detail {

namespace fs = std::filesystem;

namespace {

// Collects the names of hard links (relative paths when visiting recursively).
herr_t append_hard_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

Reader::Reader(const std::string& path) : path_(path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) invalid("no such file");
  if (fs::is_directory(status)) invalid("is a folder, not a checkpoint file");
  const uintmax_t size = fs::file_size(path, ec);
  if (!ec && size == 0) invalid("is empty (0 bytes), the remains of a write that never finished; delete it");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 < 0) fail("cannot be read");
  if (is_hdf5 == 0) {
    invalid("is not an HDF5 file (" + std::to_string(size) +
            " bytes without the HDF5 signature), so not a dptrain checkpoint");
  }
  H5Handle fapl = checkpoint_detail::checkpoint_file_access();
  file_ = H5Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file_.valid()) fail("cannot be opened as HDF5");
  root_ = check(H5Gopen2(file_.get(), "/", H5P_DEFAULT), H5Gclose, "open the root group");
}

size_t Reader::read_every_dataset() {
  std::vector<std::string> names;
  if (H5Lvisit(root_.get(), H5_INDEX_NAME, H5_ITER_INC, append_hard_link, &names) < 0) fail("cannot list the file");
  size_t datasets = 0;
  for (const std::string& name : names) {
    H5Handle object = check(H5Oopen(root_.get(), name.c_str(), H5P_DEFAULT), H5Oclose, "open /" + name);
    if (H5Iget_type(object.get()) != H5I_DATASET) continue;
    read_raw(object.get(), "/" + name);
    ++datasets;
  }
  return datasets;
}

std::vector<CheckpointObject> Reader::layout() {
  std::vector<std::string> names;
  if (H5Lvisit(root_.get(), creation_index(root_.get()), H5_ITER_INC, append_hard_link, &names) < 0) {
    H5Eclear2(H5E_DEFAULT);  // a group without a creation-order index: list by name instead
    names.clear();
    if (H5Lvisit(root_.get(), H5_INDEX_NAME, H5_ITER_INC, append_hard_link, &names) < 0) fail("cannot list the file");
  }
  std::vector<CheckpointObject> objects;
  for (const std::string& name : names) {
    CheckpointObject object;
    object.path = "/" + name;
    H5Handle id = check(H5Oopen(root_.get(), name.c_str(), H5P_DEFAULT), H5Oclose, "open " + object.path);
    const H5I_type_t type = H5Iget_type(id.get());
    if (type == H5I_GROUP) {
      object.kind = CheckpointObjectKind::Group;
    } else if (type == H5I_DATASET) {
      object.kind = CheckpointObjectKind::Dataset;
      H5Handle data_type = check(H5Dget_type(id.get()), H5Tclose, "read the type of " + object.path);
      object.dtype = dtype_name(data_type.get());
      object.shape = dataset_shape(id.get(), object.path);
    }
    objects.push_back(std::move(object));
  }
  return objects;
}

void Reader::fail(const std::string& what) const {
  throw CheckpointError(path_, what + " (" + hdf5_failure() + ")" + kDamaged);
}

void Reader::invalid(const std::string& what) const { throw CheckpointError(path_, what); }

size_t Reader::check_declared(hid_t dataset, const Shape& shape, size_t value_bytes, const std::string& where) const {
  size_t values = 1;
  for (size_t d : shape) {
    if (d != 0 && values > SIZE_MAX / d / std::max<size_t>(value_bytes, 1)) {
      invalid("dataset " + where + " has shape " + to_string(shape) + ", too large to address" + kDamaged);
    }
    values *= d;
  }
  size_t stored = 0;
  if (!hdf5_storage_holds(dataset, values * value_bytes, &stored)) {
    invalid("dataset " + where + " has shape " + to_string(shape) + " (" + byte_size_text(values * value_bytes) +
            "), but the file stores only " + byte_size_text(stored) + " of it" + kDamaged);
  }
  reserve(values * value_bytes, "dataset " + where + " of checkpoint " + path_, "");
  return values;
}

H5Handle Reader::check(hid_t id, H5Handle::Closer closer, const std::string& what) const {
  if (id < 0) fail("cannot " + what);
  return H5Handle(id, closer);
}

bool Reader::has_link(hid_t group, const std::string& name) const {
  const htri_t exists = H5Lexists(group, name.c_str(), H5P_DEFAULT);
  if (exists < 0) fail("cannot look up " + name);
  return exists > 0;
}

bool Reader::has_attribute(hid_t object, const char* name) const {
  const htri_t exists = H5Aexists(object, name);
  if (exists < 0) fail("cannot look up attribute " + std::string(name));
  return exists > 0;
}

H5_index_t Reader::creation_index(hid_t group) const {
  H5Handle gcpl(H5Gget_create_plist(group), H5Pclose);
  unsigned flags = 0;
  if (!gcpl.valid() || H5Pget_link_creation_order(gcpl.get(), &flags) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5_INDEX_NAME;
  }
  return (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

std::vector<std::string> Reader::member_names(hid_t group, const std::string& where) const {
  std::vector<std::string> names;
  if (H5Literate(group, creation_index(group), H5_ITER_INC, nullptr, append_hard_link, &names) < 0) {
    fail("cannot list " + where);
  }
  return names;
}

H5Handle Reader::open_group(hid_t parent, const std::string& name, const std::string& where) const {
  if (!has_link(parent, name)) invalid("has no group " + where + kIncomplete);
  return check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "open " + where + " as a group");
}

H5Handle Reader::open_attribute(hid_t object, const char* name, const std::string& where) const {
  if (!has_attribute(object, name)) invalid("has no attribute '" + std::string(name) + "' on " + where + kIncomplete);
  return check(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, "open attribute '" + std::string(name) + "'");
}

uint64_t Reader::read_uint_attribute(hid_t object, const char* name, const std::string& where) const {
  return read_uint_attributes(object, name, where, Values::One)[0];
}

std::vector<uint64_t> Reader::read_uint_attributes(hid_t object, const char* name, const std::string& where,
                                                   Values values) const {
  H5Handle attr = open_attribute(object, name, where);
  H5Handle type = check(H5Aget_type(attr.get()), H5Tclose, "read the type of attribute " + std::string(name));
  const size_t n = attribute_values(attr.get(), name, where, values, H5Tget_class(type.get()) == H5T_INTEGER,
                                    dtype_name(type.get()), "unsigned integer", sizeof(uint64_t));
  std::vector<uint64_t> out(n);
  if (H5Aread(attr.get(), H5T_NATIVE_UINT64, out.data()) < 0) fail("cannot read attribute '" + std::string(name) + "'");
  return out;
}

size_t Reader::attribute_values(hid_t attr, const char* name, const std::string& where, Values values, bool right_type,
                                const std::string& type_name, const std::string& kind, size_t value_bytes) const {
  H5Handle space = check(H5Aget_space(attr), H5Sclose, "read the shape of attribute " + std::string(name));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  const int rank = H5Sget_simple_extent_ndims(space.get());
  const bool fits = values == Values::One ? n == 1 : n >= 1 && rank == 1;
  if (!right_type || !fits) {
    invalid("attribute '" + std::string(name) + "' on " + where + " is a " + type_name + " array of " +
            std::to_string(n) + ", not " + (values == Values::One ? "one " + kind : "a list of " + kind + "s") +
            kIncomplete);
  }
  if (static_cast<size_t>(n) > SIZE_MAX / std::max<size_t>(value_bytes, 1)) {
    invalid("attribute '" + std::string(name) + "' on " + where + " is too large to address" + kDamaged);
  }
  reserve(static_cast<size_t>(n) * value_bytes, "attribute '" + std::string(name) + "' of checkpoint " + path_, "");
  return static_cast<size_t>(n);
}

void Reader::refuse_variable_length(hid_t type, const std::string& what) const {
  if (!hdf5_has_variable_length(type)) return;
  invalid(what +
          " holds variable-length values, which dptrain does not read (HDF5 keeps them in its global heap, which "
          "has no checksum, so damage there can hang the reader); dptrain writes strings as fixed-length UTF-8: "
          "rewrite it as such (docs/checkpoints.md, \"Strings\", shows how with h5py)");
}

std::string Reader::read_string_attribute(hid_t object, const char* name, const std::string& where) const {
  return read_string_attributes(object, name, where, Values::One)[0];
}

std::vector<std::string> Reader::read_string_attributes(hid_t object, const char* name, const std::string& where,
                                                        Values values) const {
  H5Handle attr = open_attribute(object, name, where);
  H5Handle type = check(H5Aget_type(attr.get()), H5Tclose, "read the type of attribute " + std::string(name));
  const bool is_string = H5Tget_class(type.get()) == H5T_STRING;
  const size_t width = H5Tget_size(type.get());
  const size_t n =
      attribute_values(attr.get(), name, where, values, is_string, dtype_name(type.get()), "string", width);
  refuse_variable_length(type.get(), "attribute '" + std::string(name) + "' on " + where);
  std::string buffer(n * width, '\0');
  if (H5Aread(attr.get(), type.get(), buffer.data()) < 0) fail("cannot read attribute '" + std::string(name) + "'");
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    const std::string value = buffer.substr(i * width, width);
    out.push_back(value.substr(0, value.find('\0')));
  }
  return out;
}

std::string Reader::read_text(const char* name) const {
  const std::string where = "/" + std::string(name);
  if (!has_link(root_.get(), name)) invalid("has no dataset " + where + kIncomplete);
  H5Handle dataset = check(H5Dopen2(root_.get(), name, H5P_DEFAULT), H5Dclose, "open dataset " + where);
  H5Handle type = check(H5Dget_type(dataset.get()), H5Tclose, "read the type of " + where);
  H5Handle space = check(H5Dget_space(dataset.get()), H5Sclose, "read the shape of " + where);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) {
    invalid("dataset " + where + " is a " + dtype_name(type.get()) + " array, not one string" + kIncomplete);
  }
  refuse_variable_length(type.get(), "dataset " + where);
  check_declared(dataset.get(), {1}, H5Tget_size(type.get()), where);
  std::string buffer(H5Tget_size(type.get()), '\0');
  if (H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    fail("dataset " + where + " cannot be read");
  }
  return buffer.substr(0, buffer.find('\0'));
}

Shape Reader::dataset_shape(hid_t dataset, const std::string& where) const {
  H5Handle space = check(H5Dget_space(dataset), H5Sclose, "read the shape of " + where);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail("cannot read the shape of " + where);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
    fail("cannot read the shape of " + where);
  }
  return Shape(dims.begin(), dims.end());
}

void Reader::read_raw(hid_t dataset, const std::string& where) const {
  H5Handle type = check(H5Dget_type(dataset), H5Tclose, "read the type of " + where);
  H5Handle space = check(H5Dget_space(dataset), H5Sclose, "read the shape of " + where);
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  if (points < 0) fail("cannot read the shape of " + where);
  if (points == 0 || H5Sget_simple_extent_type(space.get()) == H5S_NULL) return;
  refuse_variable_length(type.get(), "dataset " + where);
  check_declared(dataset, {static_cast<size_t>(points)}, H5Tget_size(type.get()), where);
  std::vector<unsigned char> buffer(static_cast<size_t>(points) * H5Tget_size(type.get()));
  if (H5Dread(dataset, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    fail("dataset " + where + " cannot be read");
  }
}

}  // namespace checkpoint_detail

size_t verify_checkpoint(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  checkpoint_detail::Reader reader(path);
  reader.read(CheckpointContents::Header);  // the layout first: a foreign file is reported as such
  return reader.read_every_dataset();
}

std::vector<CheckpointObject> checkpoint_layout(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  checkpoint_detail::Reader reader(path);
  return reader.layout();
}

}  // namespace dptrain
