// Writing checkpoints: the HDF5 layout of runtime/checkpoint/checkpoint.h, into a temporary file that is renamed
// into place only once it is complete and on disk.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/format.h"
#include "runtime/core/errors.h"
#include "runtime/core/int8.h"
#include "runtime/core/private_files.h"
#include "runtime/data/hdf5_util.h"

namespace dptrain {

namespace fs = std::filesystem;
using checkpoint_detail::hdf5_failure;

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;  // at most 1 MiB per chunk
constexpr char kNothingWritten[] = "; no checkpoint was written and existing files are unchanged";

// Chunk dimensions for an array of `shape` with `value_bytes` per value: whole trailing dimensions, as
// many leading rows as fit in kChunkBytes, spread evenly over the chunks so that the last one is not
// mostly padding, and single rows of a dimension whose inner block alone is larger.
std::vector<hsize_t> chunk_dims(const Shape& shape, size_t value_bytes) {
  const size_t chunk_values = kChunkBytes / value_bytes;
  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  size_t inner = num_elements(shape);
  for (size_t i = 0; i < shape.size(); ++i) {
    inner /= shape[i];  // elements of one index of dimension i
    if (inner <= chunk_values) {
      const size_t most = std::clamp<size_t>(chunk_values / inner, 1, shape[i]);
      const size_t chunks = (shape[i] + most - 1) / most;
      chunk[i] = (shape[i] + chunks - 1) / chunks;
      break;
    }
    chunk[i] = 1;
  }
  return chunk;
}

// Writes one checkpoint file; every failure is a CheckpointError naming the final path.
class Writer {
 public:
  explicit Writer(std::string path) : path_(std::move(path)) {}

  // Writes `state` to `temp` and closes it. Holds the HDF5 lock throughout.
  void write_file(const std::string& temp, const CheckpointState& state) {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    Hdf5Quiet quiet;
    H5Handle fcpl = check(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "create file properties");
    check(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
          "set up creation order");
    H5Handle fapl = checkpoint_detail::checkpoint_file_access();
    H5Handle file = check(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose,
                          "create the temporary file " + temp);
    const hid_t root = file.get();
    write_string_attribute(root, "format", kCheckpointFormat);
    write_uint_attribute(root, "format_version",
                         state.quantization.empty() ? kCheckpointFormatVersion : kQuantizedCheckpointFormatVersion,
                         H5T_STD_U32LE);
    write_string_attribute(root, "dptrain_version", DPTRAIN_VERSION);
    write_string_attribute(root, "run_name", state.run_name);
    const std::pair<const char*, uint64_t> numbers[] = {
        {"seed", state.seed},
        {"epoch", state.epoch},
        {"step_in_epoch", state.step_in_epoch},
        {"global_step", state.global_step},
        {"steps_per_epoch", state.steps_per_epoch},
        {"global_batch", state.global_batch},
        {"dataset_size", state.dataset_size},
        {"world_size", state.world_size},
    };
    for (const auto& [name, value] : numbers) write_uint_attribute(root, name, value, H5T_STD_U64LE);
    if (!state.input_shape.empty()) {
      const std::vector<uint64_t> dims(state.input_shape.begin(), state.input_shape.end());
      write_list_attribute(root, "input_shape", H5T_STD_U64LE, H5T_NATIVE_UINT64, dims.size(), dims.data());
    }
    if (!state.class_names.empty()) write_strings_attribute(root, "class_names", state.class_names);
    write_text(root, checkpoint_detail::kConfigDataset, state.config_text);
    write_text(root, checkpoint_detail::kMetricsDataset, state.metrics_json);

    std::map<std::string, const CheckpointQuantization*> int8;
    for (const CheckpointQuantization& q : state.quantization) int8[q.name] = &q;
    H5Handle parameters = create_group(root, checkpoint_detail::kParametersGroup);
    for (const CheckpointTensor& t : state.parameters) {
      const auto found = int8.find(t.name);
      write_tensor(parameters.get(), "/parameters", t, found == int8.end() ? nullptr : found->second);
      if (found != int8.end()) int8.erase(found);
    }
    if (!int8.empty()) reject("quantization of " + int8.begin()->first + ", which is not a parameter");
    if (!state.quantization.empty()) {
      H5Handle quantization = create_group(root, checkpoint_detail::kQuantizationGroup);
      for (const CheckpointQuantization& q : state.quantization) {
        check_name(q.name, "quantized weight");
        H5Handle group = create_group(quantization.get(), q.name);
        const std::string where = "/quantization/" + q.name;
        write_tensor(group.get(), where, CheckpointTensor{"scales", {q.scales.size()}, q.scales});
        write_tensor(group.get(), where, CheckpointTensor{"input_range", {1}, {q.input_range}});
      }
      if (!quantization.close()) fail("cannot finish the file");
    }
    H5Handle buffers = create_group(root, checkpoint_detail::kBuffersGroup);
    for (const CheckpointTensor& t : state.buffers) write_tensor(buffers.get(), "/buffers", t);

    H5Handle optimizer = create_group(root, checkpoint_detail::kOptimizerGroup);
    write_string_attribute(optimizer.get(), "name", state.optimizer_name);
    write_uint_attribute(optimizer.get(), "steps", state.optimizer_steps, H5T_STD_U64LE);
    for (const CheckpointOptimizerState& s : state.optimizer_state) {
      check_optimizer_state(s, state.parameters);
      H5Handle group = create_group(optimizer.get(), s.name);
      for (const CheckpointTensor& t : s.tensors) write_tensor(group.get(), "/optimizer/" + s.name, t);
    }
    if (!state.masks.empty()) {
      H5Handle masks = create_group(root, checkpoint_detail::kMasksGroup);
      for (const CheckpointTensor& t : state.masks) write_tensor(masks.get(), "/masks", t);
      if (!masks.close()) fail("cannot finish the file");
    }
    if (!parameters.close() || !buffers.close() || !optimizer.close() || !file.close()) fail("cannot finish the file");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(path_, what + " (" + hdf5_failure() + ")" + kNothingWritten);
  }
  [[noreturn]] void reject(const std::string& what) const { throw CheckpointError(path_, what + kNothingWritten); }

  H5Handle check(hid_t id, H5Handle::Closer closer, const std::string& what) const {
    if (id < 0) fail("cannot " + what);
    return H5Handle(id, closer);
  }
  void check(herr_t status, const std::string& what) const {
    if (status < 0) fail("cannot " + what);
  }

  // A link name for HDF5: not empty, no '/', not "." (which HDF5 reads as the group itself).
  void check_name(const std::string& name, const std::string& what) const {
    if (name.empty() || name == "." || name.find('/') != std::string::npos) {
      reject(what + " name '" + name + "' cannot be stored: names must be non-empty, not '.', and contain no '/'");
    }
  }

  H5Handle create_group(hid_t parent, const std::string& name) {
    check_name(name, "group");
    H5Handle gcpl = checkpoint_detail::ordered_group_creation();
    return check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
                 "create group " + name);
  }

  void write_attribute(hid_t object, const char* name, hid_t type, const void* data) {
    H5Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar data space");
    H5Handle attr = check(H5Acreate2(object, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                          "create attribute " + std::string(name));
    check(H5Awrite(attr.get(), type, data), "write attribute " + std::string(name));
  }

  void write_uint_attribute(hid_t object, const char* name, uint64_t value, hid_t file_type) {
    H5Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar data space");
    H5Handle attr = check(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                          "create attribute " + std::string(name));
    check(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value), "write attribute " + std::string(name));
  }

  // A scalar fixed-length (null-padded) UTF-8 string attribute: stored in the object header, which the
  // file format checksums (a variable-length string would live in the unchecked global heap).
  void write_string_attribute(hid_t object, const char* name, const std::string& value) {
    const std::string stored = value.empty() ? std::string(1, '\0') : value;
    H5Handle type = string_type(stored.size());
    write_attribute(object, name, type.get(), stored.data());
  }

  // A one-dimensional attribute of `count` (> 0) values, stored as `file_type`.
  void write_list_attribute(hid_t object, const char* name, hid_t file_type, hid_t memory_type, size_t count,
                            const void* data) {
    const hsize_t n = count;
    H5Handle space = check(H5Screate_simple(1, &n, nullptr), H5Sclose, "create a data space");
    H5Handle attr = check(H5Acreate2(object, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                          "create attribute " + std::string(name));
    check(H5Awrite(attr.get(), memory_type, data), "write attribute " + std::string(name));
  }

  // A list of fixed-length (null-padded) UTF-8 strings as wide as the longest (at least 1 byte), kept in
  // the checksummed object header as write_string_attribute's. A value holding a NUL cannot be kept.
  void write_strings_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
    size_t width = 1;
    for (const std::string& v : values) width = std::max(width, v.size());
    std::vector<char> packed(values.size() * width, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].find('\0') != std::string::npos) {
        reject("attribute " + std::string(name) + " entry " + std::to_string(i) + " holds a NUL byte");
      }
      std::copy(values[i].begin(), values[i].end(), packed.begin() + i * width);
    }
    H5Handle type = string_type(width);
    write_list_attribute(object, name, type.get(), type.get(), values.size(), packed.data());
  }

  H5Handle string_type(size_t bytes) {
    H5Handle type = check(H5Tcopy(H5T_C_S1), H5Tclose, "create a string type");
    check(H5Tset_size(type.get(), bytes), "set up a string type of " + std::to_string(bytes) + " bytes");
    check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "set up a string type");
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "set up a string type");
    return type;
  }

  // A one-element, fixed-length (null-padded) UTF-8 string dataset, chunked and checksummed.
  void write_text(hid_t parent, const char* name, const std::string& text) {
    const std::string stored = text.empty() ? std::string(1, '\0') : text;
    H5Handle type = string_type(stored.size());
    const hsize_t one = 1;
    H5Handle space = check(H5Screate_simple(1, &one, nullptr), H5Sclose, "create a data space");
    H5Handle dcpl = check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "create dataset properties");
    check(H5Pset_chunk(dcpl.get(), 1, &one), "set the chunk size of /" + std::string(name));
    check(H5Pset_fletcher32(dcpl.get()), "enable checksums for /" + std::string(name));
    H5Handle dataset = check(H5Dcreate2(parent, name, type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                             H5Dclose, "create dataset /" + std::string(name));
    check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, stored.data()),
          "write dataset /" + std::string(name));
  }

  // A float32 dataset of the tensor's shape, chunked and checksummed; with `int8`, an int8 one of the
  // values rounded per output channel (dimension 0) with its scales.
  void write_tensor(hid_t group, const std::string& group_path, const CheckpointTensor& t,
                    const CheckpointQuantization* int8 = nullptr) {
    check_name(t.name, "tensor");
    const std::string where = group_path + "/" + t.name;
    if (t.shape.empty() || std::count(t.shape.begin(), t.shape.end(), size_t{0}) > 0) {
      reject("tensor " + where + " has shape " + to_string(t.shape) +
             "; only arrays of at least one dimension and no empty dimension can be stored");
    }
    if (t.values.size() != num_elements(t.shape)) {
      reject("tensor " + where + " has " + std::to_string(t.values.size()) + " values, but its shape " +
             to_string(t.shape) + " needs " + std::to_string(num_elements(t.shape)));
    }
    const std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
    const std::vector<hsize_t> chunk = chunk_dims(t.shape, int8 ? 1 : sizeof(float));
    const int rank = static_cast<int>(dims.size());
    H5Handle space = check(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose, "create the data space of " + where);
    H5Handle dcpl = check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "create dataset properties");
    check(H5Pset_chunk(dcpl.get(), rank, chunk.data()), "set the chunk size of " + where);
    check(H5Pset_fletcher32(dcpl.get()), "enable checksums for " + where);
    H5Handle dataset = check(H5Dcreate2(group, t.name.c_str(), int8 ? H5T_STD_I8LE : H5T_IEEE_F32LE, space.get(),
                                        H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                             H5Dclose, "create dataset " + where);
    if (!int8) {
      check(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()),
            "write dataset " + where);
      return;
    }
    if (int8->scales.size() != t.shape[0]) {
      reject("quantized weight " + where + " has " + std::to_string(int8->scales.size()) + " scales for " +
             std::to_string(t.shape[0]) + " output channels");
    }
    const size_t per_channel = t.values.size() / t.shape[0];
    std::vector<signed char> rounded(t.values.size());
    for (size_t i = 0; i < rounded.size(); ++i) rounded[i] = quantize_weight(t.values[i], int8->scales[i / per_channel]);
    check(H5Dwrite(dataset.get(), H5T_NATIVE_SCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, rounded.data()),
          "write dataset " + where);
  }

  // An optimizer state must hold one tensor per parameter, with the parameter's name and shape, in order.
  void check_optimizer_state(const CheckpointOptimizerState& s, const std::vector<CheckpointTensor>& parameters) {
    check_name(s.name, "optimizer state");
    if (s.tensors.size() != parameters.size()) {
      reject("optimizer state '" + s.name + "' has " + std::to_string(s.tensors.size()) + " tensors for " +
             std::to_string(parameters.size()) + " parameters; it needs one per parameter");
    }
    for (size_t i = 0; i < parameters.size(); ++i) {
      if (s.tensors[i].name != parameters[i].name || s.tensors[i].shape != parameters[i].shape) {
        reject("optimizer state '" + s.name + "' tensor " + std::to_string(i) + " is '" + s.tensors[i].name + "' " +
               to_string(s.tensors[i].shape) + ", but parameter " + std::to_string(i) + " is '" + parameters[i].name +
               "' " + to_string(parameters[i].shape) + "; they must match");
      }
    }
  }

  std::string path_;
};

}  // namespace

std::string checkpoint_file_name(uint64_t epoch, uint64_t global_step) {
  char name[96];
  std::snprintf(name, sizeof(name), "ckpt-e%06llu-s%08llu.h5", static_cast<unsigned long long>(epoch),
                static_cast<unsigned long long>(global_step));
  return name;
}

void write_checkpoint(const std::string& path, const CheckpointState& state) {
  const fs::path out(path);
  if (!out.has_filename()) {
    throw CheckpointError(path, "needs a file name, not a folder" + std::string(kNothingWritten));
  }
  const fs::path folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw CheckpointError(
        path, "the folder " + folder.string() + " does not exist; create it first" + std::string(kNothingWritten));
  }
  if (fs::is_directory(out, ec)) {
    throw CheckpointError(path, "is a folder; remove it or choose another name" + std::string(kNothingWritten));
  }
  try {
    // Created exclusively and owner-only first, so that HDF5's truncating open below writes into this
    // new file and never into one planted at the name; the mode stays 0600.
    PrivateTempFile temp(path);
    temp.close();
    Writer(path).write_file(temp.path(), state);
    temp.publish();
  } catch (const CheckpointError&) {
    throw;
  } catch (const Error& e) {
    throw CheckpointError(path, e.what() + std::string(kNothingWritten));
  }
  // Makes the rename durable. The file itself is already on disk, and without this the folder at worst
  // shows the previous checkpoint after a power loss, so a folder that cannot be synced is no error.
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string save_checkpoint(const std::string& dir, const CheckpointState& state) {
  try {
    make_private_directories(dir);
  } catch (const Error& e) {
    throw CheckpointError(dir, "cannot create the checkpoint folder (" + std::string(e.what()) + ")" + kNothingWritten);
  }
  const std::string path = (fs::path(dir) / checkpoint_file_name(state.epoch, state.global_step)).string();
  write_checkpoint(path, state);
  return path;
}

}  // namespace dptrain
