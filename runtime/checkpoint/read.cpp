// Reading checkpoints: the layout of runtime/checkpoint/checkpoint.h read through the checked reads
// of Reader (reader.h); every failure becomes a CheckpointError that names the file, what is wrong
// with it and what to do.
#include <cmath>
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
  if (version == 0 || version > kQuantizedCheckpointFormatVersion) {
    invalid("has checkpoint format version " + std::to_string(version) + " (written by dptrain " +
            state.dptrain_version + "); this dptrain (" + DPTRAIN_VERSION + ") reads format versions 1 to " +
            std::to_string(kQuantizedCheckpointFormatVersion) + ": use the dptrain that wrote it, or a newer one");
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
  std::set<std::string> int8;  // parameters stored in int8 (quantized models)
  for (const std::string& name : member_names(parameters.get(), "/parameters")) {
    bool is_int8 = false;
    state.parameters.push_back(read_tensor(parameters.get(), "/parameters", name, contents, nullptr, &is_int8));
    if (is_int8) int8.insert(name);
  }
  if (!int8.empty() || has_link(root, checkpoint_detail::kQuantizationGroup)) {
    if (version < kQuantizedCheckpointFormatVersion) {
      invalid("holds int8 parameters, which need format version " + std::to_string(kQuantizedCheckpointFormatVersion) +
              ", but says version " + std::to_string(version) + kDamaged);
    }
    state.quantization = read_quantization(state.parameters, int8, contents);
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
                                     CheckpointContents contents, const CheckpointTensor* like, bool* int8) const {
  const std::string where = group_path + "/" + name;
  H5Handle dataset = check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, "open " + where + " as a dataset");
  H5Handle type = check(H5Dget_type(dataset.get()), H5Tclose, "read the type of " + where);
  CheckpointTensor tensor;
  tensor.name = name;
  tensor.shape = dataset_shape(dataset.get(), where);
  if (int8 && H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1 &&
      H5Tget_sign(type.get()) == H5T_SGN_2 && !tensor.shape.empty()) {
    *int8 = true;
    if (contents == CheckpointContents::Everything) {
      std::vector<signed char> rounded(check_declared(dataset.get(), tensor.shape, 1, where));
      if (H5Dread(dataset.get(), H5T_NATIVE_SCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, rounded.data()) < 0) {
        fail("dataset " + where + " cannot be read");
      }
      tensor.values.assign(rounded.begin(), rounded.end());
    }
    return tensor;
  }
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

std::vector<CheckpointQuantization> Reader::read_quantization(std::vector<CheckpointTensor>& parameters,
                                                              const std::set<std::string>& int8,
                                                              CheckpointContents contents) const {
  if (!has_link(root_.get(), checkpoint_detail::kQuantizationGroup)) {
    invalid("holds int8 parameters (" + *int8.begin() + ") but no /quantization group with their scales" + kDamaged);
  }
  H5Handle group = open_group(root_.get(), checkpoint_detail::kQuantizationGroup, "/quantization");
  std::set<std::string> listed;
  std::vector<CheckpointQuantization> quantization;
  for (CheckpointTensor& parameter : parameters) {  // in parameter order
    if (!int8.count(parameter.name)) continue;
    const std::string where = "/quantization/" + parameter.name;
    if (!has_link(group.get(), parameter.name.c_str())) {
      invalid("has the int8 parameter /parameters/" + parameter.name + " but no " + where + kDamaged);
    }
    H5Handle own = open_group(group.get(), parameter.name.c_str(), where);
    CheckpointQuantization q;
    q.name = parameter.name;
    const CheckpointTensor scales = read_tensor(own.get(), where, "scales", contents);
    const CheckpointTensor range = read_tensor(own.get(), where, "input_range", contents);
    if (scales.shape != Shape{parameter.shape[0]} || range.shape != Shape{1}) {
      invalid("has " + where + "/scales of shape " + to_string(scales.shape) + " and input_range of shape " +
              to_string(range.shape) + "; they must be (" + std::to_string(parameter.shape[0]) + ") and (1)" + kDamaged);
    }
    if (contents == CheckpointContents::Everything) {
      for (float v : scales.values) {
        if (!(v > 0) || !std::isfinite(v)) invalid("has a scale of " + std::to_string(v) + " in " + where + kDamaged);
      }
      if (!(range.values[0] > 0) || !std::isfinite(range.values[0])) {
        invalid("has an input range of " + std::to_string(range.values[0]) + " in " + where + kDamaged);
      }
      q.scales = scales.values;
      q.input_range = range.values[0];
      const size_t per_channel = parameter.values.size() / parameter.shape[0];
      for (size_t i = 0; i < parameter.values.size(); ++i) parameter.values[i] *= q.scales[i / per_channel];
    }
    listed.insert(parameter.name);
    quantization.push_back(std::move(q));
  }
  for (const std::string& name : member_names(group.get(), "/quantization")) {
    if (!listed.count(name)) {
      invalid("has /quantization/" + name + ", which matches no int8 dataset in /parameters" + kDamaged);
    }
  }
  return quantization;
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
