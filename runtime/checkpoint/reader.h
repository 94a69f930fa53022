// Reader: one open checkpoint file and its checked reads, shared by read.cpp (the layout of
// runtime/checkpoint/checkpoint.h) and reader.cpp (the reads themselves, every dataset, the file's
// objects). Not a public interface: the part's own files include it.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/hdf5_util.h"

namespace dptrain::checkpoint_detail {

// What error messages add for a file that is damaged, and for one that lacks part of the layout.
inline constexpr char kDamaged[] = "; the file is damaged or incomplete: resume from another checkpoint or delete it";
inline constexpr char kIncomplete[] = "; it is not a complete dptrain checkpoint";

// How many values an attribute holds: one, or a one-dimensional list of at least one.
enum class Values { One, List };

// One open checkpoint file. Construct and use it while holding hdf5_mutex() and an Hdf5Quiet. Every
// failure is a CheckpointError naming the file.
class Reader {
 public:
  // Opens `path`: a missing, empty or non-HDF5 file is refused, saying which.
  explicit Reader(const std::string& path);

  // The layout of checkpoint.h, checked (see read_checkpoint).
  CheckpointState read(CheckpointContents contents);
  // Reads every dataset of the file in its stored type, so that each checksum is checked; returns how many.
  size_t read_every_dataset();
  // Every group and dataset below the root (see checkpoint_layout).
  std::vector<CheckpointObject> layout();

 private:
  // A failure inside HDF5 (its message added), and a file that is not what the layout says.
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void invalid(const std::string& what) const;

  // Refuses, before anything is allocated for it, a dataset of `shape` values of `value_bytes` each that
  // the file does not store (a shape far larger than its data) or that memory cannot take; returns the
  // number of values.
  size_t check_declared(hid_t dataset, const Shape& shape, size_t value_bytes, const std::string& where) const;

  // `id` as a handle closed by `closer`; fail("cannot " + what) when it is invalid.
  H5Handle check(hid_t id, H5Handle::Closer closer, const std::string& what) const;
  bool has_link(hid_t group, const std::string& name) const;
  bool has_attribute(hid_t object, const char* name) const;
  // The creation-order index where `group` keeps one, else the name index.
  H5_index_t creation_index(hid_t group) const;

  // The group's links in creation order where the group tracks it (every checkpoint group does), else by name.
  std::vector<std::string> member_names(hid_t group, const std::string& where) const;

  // A group or attribute that must exist (invalid() naming it otherwise).
  H5Handle open_group(hid_t parent, const std::string& name, const std::string& where) const;
  H5Handle open_attribute(hid_t object, const char* name, const std::string& where) const;

  uint64_t read_uint_attribute(hid_t object, const char* name, const std::string& where) const;
  // An unsigned integer attribute: one (Values::One), or a one-dimensional list of them (Values::List).
  std::vector<uint64_t> read_uint_attributes(hid_t object, const char* name, const std::string& where,
                                             Values values) const;

  // How many values attribute `name` holds, after checking it holds the kind wanted (`right_type`; its type
  // is `type_name`): exactly one, or a one-dimensional list of at least one, that fits in memory.
  size_t attribute_values(hid_t attr, const char* name, const std::string& where, Values values, bool right_type,
                          const std::string& type_name, const std::string& kind, size_t value_bytes) const;

  // Refuses a value kept in HDF5's global heap (hdf5_has_variable_length), before it is read: nothing
  // checksums that heap, and HDF5 reading a damaged one can loop forever or crash. dptrain has always
  // written fixed-length strings, so only a file written or changed by another tool holds one.
  void refuse_variable_length(hid_t type, const std::string& what) const;

  std::string read_string_attribute(hid_t object, const char* name, const std::string& where) const;
  // A fixed-length string attribute: one string (Values::One), or a one-dimensional list of them.
  std::vector<std::string> read_string_attributes(hid_t object, const char* name, const std::string& where,
                                                  Values values) const;

  // A one-element fixed-length string dataset (or a scalar one).
  std::string read_text(const char* name) const;
  Shape dataset_shape(hid_t dataset, const std::string& where) const;

  // With `like`, the shape must be like's (checked before the values are read). With `int8`, an int8
  // dataset is read too (its integers as floats), and *int8 says whether it was one.
  CheckpointTensor read_tensor(hid_t group, const std::string& group_path, const std::string& name,
                               CheckpointContents contents, const CheckpointTensor* like = nullptr,
                               bool* int8 = nullptr) const;
  // /quantization: the int8 weights' scales and input ranges; scales the int8 `parameters` (named in
  // `int8`) to their float values.
  std::vector<CheckpointQuantization> read_quantization(std::vector<CheckpointTensor>& parameters,
                                                        const std::set<std::string>& int8,
                                                        CheckpointContents contents) const;

  // /optimizer/<name>: one tensor per parameter, of the parameter's name and shape, nothing else.
  CheckpointOptimizerState read_optimizer_state(hid_t optimizer, const std::string& name,
                                                const std::vector<CheckpointTensor>& parameters,
                                                CheckpointContents contents) const;

  // Reads a dataset's values in their stored type and drops them: its checksum is checked.
  void read_raw(hid_t dataset, const std::string& where) const;

  std::string path_;
  H5Handle file_;
  H5Handle root_;
};

}  // namespace dptrain::checkpoint_detail
