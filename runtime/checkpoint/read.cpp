// Reading checkpoints: the layout of runtime/checkpoint/checkpoint.h read through the checked reads
// of Reader (reader.h); every failure becomes a CheckpointError that names the file, what is wrong
// with it and what to do.
#include <mutex>
#include <set>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/format.h"
#include "runtime/checkpoint/reader.h"
#include "runtime/core/errors.h"

namespace dptrain {
namespace checkpoint_detail {

CheckpointState Reader::read(CheckpointContents contents) {
  const hid_t root = root_.get();
  if (!has_attribute(root, "format")) {
    invalid(
        "is an HDF5 file but not a dptrain checkpoint (it has no root attribute 'format'); give a file "
        "that dptrain wrote, named like ckpt-e000001-s00000100.h5");
  }
  const std::string format = read_string_attribute(root, "format", "/");
  if (format != kCheckpointFormat) {
    invalid("is not a dptrain checkpoint: its root attribute 'format' is '" + format + "', not '" + kCheckpointFormat +
            "'");
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
  // Optional: files written before dptrain stored what `dptrain predict` needs lack them.
  if (has_attribute(root, "input_shape")) {
    for (uint64_t d : read_uint_attributes(root, "input_shape", "/", Values::List)) {
      if (d == 0 || d > (uint64_t{1} << 31)) {
        invalid("attribute 'input_shape' on / has a dimension of " + std::to_string(d) + kDamaged);
      }
      state.input_shape.push_back(static_cast<size_t>(d));
    }
  }
  if (has_attribute(root, "class_names")) {
    state.class_names = read_string_attributes(root, "class_names", "/", Values::List);
  }
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

CheckpointTensor Reader::read_tensor(hid_t group, const std::string& group_path, const std::string& name,
                                     CheckpointContents contents, const CheckpointTensor* like) const {
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

CheckpointOptimizerState Reader::read_optimizer_state(hid_t optimizer, const std::string& name,
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

}  // namespace checkpoint_detail

CheckpointState read_checkpoint(const std::string& path, CheckpointContents contents) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  Hdf5Quiet quiet;
  checkpoint_detail::Reader reader(path);
  return reader.read(contents);
}

}  // namespace dptrain
