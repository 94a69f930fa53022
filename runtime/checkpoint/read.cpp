// Reading and checking checkpoints: every failure becomes a CheckpointError that names the file,
// what is wrong with it and what to do.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/format.h"
#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/data/hdf5_util.h"

namespace dptrain {

namespace fs = std::filesystem;
using checkpoint_detail::hdf5_failure;

namespace {

constexpr char kDamaged[] = "; the file is damaged or incomplete: resume from another checkpoint or delete it";
constexpr char kIncomplete[] = "; it is not a complete dptrain checkpoint";

std::string dtype_name(hid_t type) {
  const std::string bits = std::to_string(H5Tget_size(type) * 8);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + bits;
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen";
    case H5T_REFERENCE:
      return "reference";
    default:
      return "other";
  }
}

// Collects the names of hard links (relative paths when visiting recursively).
herr_t append_hard_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

// One open checkpoint file. Construct and use it while holding hdf5_mutex() and an Hdf5Quiet.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
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

  CheckpointState read(CheckpointContents contents) {
    const hid_t root = root_.get();
    if (!has_attribute(root, "format")) {
      invalid(
          "is an HDF5 file but not a dptrain checkpoint (it has no root attribute 'format'); give a file "
          "that dptrain wrote, named like ckpt-e000001-s00000100.h5");
    }
    const std::string format = read_string_attribute(root, "format", "/");
    if (format != kCheckpointFormat) {
      invalid("is not a dptrain checkpoint: its root attribute 'format' is '" + format + "', not '" +
              kCheckpointFormat + "'");
    }
    CheckpointState state;
    state.dptrain_version =
        has_attribute(root, "dptrain_version") ? read_string_attribute(root, "dptrain_version", "/") : "unknown";
    const uint64_t version = read_uint_attribute(root, "format_version", "/");
    if (version == 0 || version > kCheckpointFormatVersion) {
      invalid("has checkpoint format version " + std::to_string(version) + " (written by dptrain " +
              state.dptrain_version + "); this dptrain (" + DPTRAIN_VERSION + ") reads format versions 1 to " +
              std::to_string(kCheckpointFormatVersion) + ": use the dptrain that wrote it, or a newer one");
    }
    state.format_version = static_cast<uint32_t>(version);
    state.run_name = read_string_attribute(root, "run_name", "/");
    state.seed = read_uint_attribute(root, "seed", "/");
    state.epoch = read_uint_attribute(root, "epoch", "/");
    state.step_in_epoch = read_uint_attribute(root, "step_in_epoch", "/");
    state.global_step = read_uint_attribute(root, "global_step", "/");
    state.steps_per_epoch = read_uint_attribute(root, "steps_per_epoch", "/");
    state.global_batch = read_uint_attribute(root, "global_batch", "/");
    state.dataset_size = read_uint_attribute(root, "dataset_size", "/");
    state.world_size = read_uint_attribute(root, "world_size", "/");
    state.config_text = read_text(checkpoint_detail::kConfigDataset);
    if (has_link(root, checkpoint_detail::kMetricsDataset)) {
      state.metrics_json = read_text(checkpoint_detail::kMetricsDataset);
    }

    H5Handle parameters = open_group(root, checkpoint_detail::kParametersGroup, "/parameters");
    for (const std::string& name : member_names(parameters.get(), "/parameters")) {
      state.parameters.push_back(read_tensor(parameters.get(), "/parameters", name, contents));
    }
    if (has_link(root, checkpoint_detail::kBuffersGroup)) {  // format_version 2 on
      H5Handle buffers = open_group(root, checkpoint_detail::kBuffersGroup, "/buffers");
      for (const std::string& name : member_names(buffers.get(), "/buffers")) {
        state.buffers.push_back(read_tensor(buffers.get(), "/buffers", name, contents));
      }
    }

    if (has_link(root, checkpoint_detail::kMasksGroup)) {  // runs that prune
      H5Handle masks = open_group(root, checkpoint_detail::kMasksGroup, "/masks");
      for (const std::string& name : member_names(masks.get(), "/masks")) {
        state.masks.push_back(read_tensor(masks.get(), "/masks", name, contents));
      }
    }

    H5Handle optimizer = open_group(root, checkpoint_detail::kOptimizerGroup, "/optimizer");
    state.optimizer_name = read_string_attribute(optimizer.get(), "name", "/optimizer");
    state.optimizer_steps = read_uint_attribute(optimizer.get(), "steps", "/optimizer");
    for (const std::string& name : member_names(optimizer.get(), "/optimizer")) {
      state.optimizer_state.push_back(read_optimizer_state(optimizer.get(), name, state.parameters, contents));
    }
    return state;
  }

  // Reads every dataset of the file in its stored type, so that each checksum is checked; returns how many.
  size_t read_every_dataset() {
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

  std::vector<CheckpointObject> layout() {
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

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(path_, what + " (" + hdf5_failure() + ")" + kDamaged);
  }
  [[noreturn]] void invalid(const std::string& what) const { throw CheckpointError(path_, what); }

  // Refuses, before anything is allocated for it, a dataset of `shape` values of `value_bytes` each that
  // the file does not store (a shape far larger than its data) or that memory cannot take; returns the
  // number of values.
  size_t check_declared(hid_t dataset, const Shape& shape, size_t value_bytes, const std::string& where) const {
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

  H5Handle check(hid_t id, H5Handle::Closer closer, const std::string& what) const {
    if (id < 0) fail("cannot " + what);
    return H5Handle(id, closer);
  }

  bool has_link(hid_t group, const std::string& name) const {
    const htri_t exists = H5Lexists(group, name.c_str(), H5P_DEFAULT);
    if (exists < 0) fail("cannot look up " + name);
    return exists > 0;
  }

  bool has_attribute(hid_t object, const char* name) const {
    const htri_t exists = H5Aexists(object, name);
    if (exists < 0) fail("cannot look up attribute " + std::string(name));
    return exists > 0;
  }

  H5_index_t creation_index(hid_t group) const {
    H5Handle gcpl(H5Gget_create_plist(group), H5Pclose);
    unsigned flags = 0;
    if (!gcpl.valid() || H5Pget_link_creation_order(gcpl.get(), &flags) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return H5_INDEX_NAME;
    }
    return (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  }

  // The group's links in creation order where the group tracks it (every checkpoint group does), else by name.
  std::vector<std::string> member_names(hid_t group, const std::string& where) const {
    std::vector<std::string> names;
    if (H5Literate(group, creation_index(group), H5_ITER_INC, nullptr, append_hard_link, &names) < 0) {
      fail("cannot list " + where);
    }
    return names;
  }

  H5Handle open_group(hid_t parent, const std::string& name, const std::string& where) const {
    if (!has_link(parent, name)) invalid("has no group " + where + kIncomplete);
    return check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), H5Gclose, "open " + where + " as a group");
  }

  H5Handle open_attribute(hid_t object, const char* name, const std::string& where) const {
    if (!has_attribute(object, name)) invalid("has no attribute '" + std::string(name) + "' on " + where + kIncomplete);
    return check(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, "open attribute '" + std::string(name) + "'");
  }

  uint64_t read_uint_attribute(hid_t object, const char* name, const std::string& where) const {
    H5Handle attr = open_attribute(object, name, where);
    H5Handle type = check(H5Aget_type(attr.get()), H5Tclose, "read the type of attribute " + std::string(name));
    H5Handle space = check(H5Aget_space(attr.get()), H5Sclose, "read the shape of attribute " + std::string(name));
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1) {
      invalid("attribute '" + std::string(name) + "' on " + where + " is a " + dtype_name(type.get()) +
              " array, not one unsigned integer" + kIncomplete);
    }
    uint64_t value = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_UINT64, &value) < 0) fail("cannot read attribute '" + std::string(name) + "'");
    return value;
  }

  // Refuses a value kept in HDF5's global heap (hdf5_has_variable_length), before it is read: nothing
  // checksums that heap, and HDF5 reading a damaged one can loop forever or crash. dptrain has always
  // written fixed-length strings, so only a file written or changed by another tool holds one.
  void refuse_variable_length(hid_t type, const std::string& what) const {
    if (!hdf5_has_variable_length(type)) return;
    invalid(what +
            " holds variable-length values, which dptrain does not read (HDF5 keeps them in its global heap, which "
            "has no checksum, so damage there can hang the reader); dptrain writes strings as fixed-length UTF-8: "
            "rewrite it as such (docs/checkpoints.md, \"Strings\", shows how with h5py)");
  }

  // A fixed-length string attribute.
  std::string read_string_attribute(hid_t object, const char* name, const std::string& where) const {
    H5Handle attr = open_attribute(object, name, where);
    H5Handle type = check(H5Aget_type(attr.get()), H5Tclose, "read the type of attribute " + std::string(name));
    H5Handle space = check(H5Aget_space(attr.get()), H5Sclose, "read the shape of attribute " + std::string(name));
    if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) {
      invalid("attribute '" + std::string(name) + "' on " + where + " is a " + dtype_name(type.get()) +
              " array, not one string" + kIncomplete);
    }
    refuse_variable_length(type.get(), "attribute '" + std::string(name) + "' on " + where);
    const std::string what = "cannot read attribute '" + std::string(name) + "'";
    std::string buffer(H5Tget_size(type.get()), '\0');
    if (H5Aread(attr.get(), type.get(), buffer.data()) < 0) fail(what);
    return buffer.substr(0, buffer.find('\0'));
  }

  // A one-element fixed-length string dataset (or a scalar one).
  std::string read_text(const char* name) const {
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

  Shape dataset_shape(hid_t dataset, const std::string& where) const {
    H5Handle space = check(H5Dget_space(dataset), H5Sclose, "read the shape of " + where);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail("cannot read the shape of " + where);
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
      fail("cannot read the shape of " + where);
    }
    return Shape(dims.begin(), dims.end());
  }

  // With `like`, the shape must be like's (checked before the values are read).
  CheckpointTensor read_tensor(hid_t group, const std::string& group_path, const std::string& name,
                               CheckpointContents contents, const CheckpointTensor* like = nullptr) const {
    const std::string where = group_path + "/" + name;
    H5Handle dataset = check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, "open " + where + " as a dataset");
    H5Handle type = check(H5Dget_type(dataset.get()), H5Tclose, "read the type of " + where);
    CheckpointTensor tensor;
    tensor.name = name;
    tensor.shape = dataset_shape(dataset.get(), where);
    if (H5Tget_class(type.get()) != H5T_FLOAT || tensor.shape.empty()) {
      invalid("dataset " + where + " is a " + dtype_name(type.get()) + " of shape " + to_string(tensor.shape) +
              ", not a float32 array" + kIncomplete);
    }
    if (like && tensor.shape != like->shape) {
      invalid("dataset " + where + " has shape " + to_string(tensor.shape) + ", but /parameters/" + like->name +
              " has shape " + to_string(like->shape) + "; they must be the same" + kIncomplete);
    }
    if (contents == CheckpointContents::Everything) {
      tensor.values.resize(check_declared(dataset.get(), tensor.shape, sizeof(float), where));
      if (H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.values.data()) < 0) {
        fail("dataset " + where + " cannot be read");
      }
    }
    return tensor;
  }

  // /optimizer/<name>: one tensor per parameter, of the parameter's name and shape, nothing else.
  CheckpointOptimizerState read_optimizer_state(hid_t optimizer, const std::string& name,
                                                const std::vector<CheckpointTensor>& parameters,
                                                CheckpointContents contents) const {
    const std::string where = "/optimizer/" + name;
    H5Handle group = open_group(optimizer, name, where);
    const std::vector<std::string> members = member_names(group.get(), where);
    std::set<std::string> unmatched(members.begin(), members.end());
    CheckpointOptimizerState state;
    state.name = name;
    for (const CheckpointTensor& parameter : parameters) {
      if (unmatched.erase(parameter.name) == 0) {
        invalid("has no dataset " + where + "/" + parameter.name + ": optimizer state '" + name +
                "' needs one tensor per parameter" + kIncomplete);
      }
      state.tensors.push_back(read_tensor(group.get(), where, parameter.name, contents, &parameter));
    }
    if (!unmatched.empty()) {
      invalid("has " + where + "/" + *unmatched.begin() + ", which matches no dataset in /parameters" + kIncomplete);
    }
    return state;
  }

  void read_raw(hid_t dataset, const std::string& where) const {
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

  std::string path_;
  H5Handle file_;
  H5Handle root_;
};

}  // namespace

CheckpointState read_checkpoint(const std::string& path, CheckpointContents contents) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  Reader reader(path);
  return reader.read(contents);
}

size_t verify_checkpoint(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  Reader reader(path);
  reader.read(CheckpointContents::Header);  // the layout first: a foreign file is reported as such
  return reader.read_every_dataset();
}

std::vector<CheckpointObject> checkpoint_layout(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  Reader reader(path);
  return reader.layout();
}

}  // namespace dptrain
