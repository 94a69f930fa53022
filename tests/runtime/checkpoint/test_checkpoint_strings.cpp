// Checkpoints and HDF5's global heap: every string is written fixed-length in the checksummed HDF5 1.10
// format, and a variable-length value (only another tool writes one) is refused before it is read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/hdf5_util.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/runtime/data/test_idx_files.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using checkpoint_test::checkpoint_error;
using checkpoint_test::edit_hdf5;
using checkpoint_test::sample_state;
using ::testing::HasSubstr;

herr_t note_attribute(hid_t object, const char* name, const H5A_info_t*, void* data) {
  const hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  const hid_t type = H5Aget_type(attr);
  if (hdf5_has_variable_length(type)) static_cast<std::vector<std::string>*>(data)->push_back(name);
  H5Tclose(type);
  H5Aclose(attr);
  return 0;
}

// Every attribute and dataset of the file that holds variable-length values, and every object header
// that is not version 2 (the checksummed one).
herr_t note_object(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  auto* found = static_cast<std::vector<std::string>*>(data);
  if (info->hdr.version != 2) found->push_back(std::string(name) + ": object header version " +
                                               std::to_string(info->hdr.version));
  const hid_t object = H5Oopen(root, name, H5P_DEFAULT);
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, note_attribute, data);
  if (info->type == H5O_TYPE_DATASET) {
    const hid_t type = H5Dget_type(object);
    if (hdf5_has_variable_length(type)) found->push_back(name);
    H5Tclose(type);
  }
  H5Oclose(object);
  return 0;
}

TEST(CheckpointStrings, EveryStringIsFixedLengthAndEveryHeaderChecksummed) {
  testing::ScratchDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, sample_state(2, 77));
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5F_info2_t info;
  ASSERT_GE(H5Fget_info2(file, &info), 0);
  EXPECT_GE(info.super.version, 2u);
  std::vector<std::string> found;
  ASSERT_GE(H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, note_object, &found, H5O_INFO_BASIC | H5O_INFO_HDR), 0);
  EXPECT_TRUE(found.empty()) << found.front();
  H5Fclose(file);
}

// Replaces the root's `name` by a variable-length string attribute (or dataset) holding `text`.
void make_variable_length(const std::string& path, const char* name, H5O_type_t kind, const std::string& text) {
  edit_hdf5(path, [&](hid_t file) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    const char* value = text.c_str();
    if (kind == H5O_TYPE_DATASET) {
      if (H5Lexists(file, name, H5P_DEFAULT) > 0) ASSERT_GE(H5Ldelete(file, name, H5P_DEFAULT), 0);
      const hsize_t one = 1;
      const hid_t space = H5Screate_simple(1, &one, nullptr);
      const hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      ASSERT_GE(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value), 0);
      H5Dclose(d);
      H5Sclose(space);
    } else {
      ASSERT_GE(H5Adelete(file, name), 0);
      const hid_t space = H5Screate(H5S_SCALAR);
      const hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      ASSERT_GE(H5Awrite(attr, type, &value), 0);
      H5Aclose(attr);
      H5Sclose(space);
    }
    H5Tclose(type);
  });
}

TEST(CheckpointStrings, VariableLengthConfigIsRefusedBeforeItIsRead) {
  testing::ScratchDir dir;
  const std::string path = dir.file("c.h5");
  const CheckpointState state = sample_state(1, 40);
  write_checkpoint(path, state);
  make_variable_length(path, "config", H5O_TYPE_DATASET, state.config_text);
  for (auto read : {+[](const std::string& p) { (void)read_checkpoint(p); },
                    +[](const std::string& p) { (void)verify_checkpoint(p); }}) {
    const std::string error = checkpoint_error([&] { read(path); });
    EXPECT_THAT(error, HasSubstr(path));
    EXPECT_THAT(error, HasSubstr("dataset /config holds variable-length values, which dptrain does not read"));
    EXPECT_THAT(error, HasSubstr("docs/checkpoints.md"));
  }
  // Listing it reads no values, so inspect still shows the layout.
  bool listed = false;
  for (const CheckpointObject& o : checkpoint_layout(path)) listed |= o.path == "/config" && o.dtype == "string";
  EXPECT_TRUE(listed);
}

TEST(CheckpointStrings, VariableLengthAttributeIsRefused) {
  testing::ScratchDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, sample_state(1, 40));
  make_variable_length(path, "run_name", H5O_TYPE_UNKNOWN, "fashion_mnist_small");
  EXPECT_THAT(checkpoint_error([&] { (void)read_checkpoint(path, CheckpointContents::Header); }),
              HasSubstr("attribute 'run_name' on / holds variable-length values"));
}

TEST(CheckpointStrings, VerifyRefusesAVariableLengthDatasetOfAnyName) {
  testing::ScratchDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, sample_state(1, 40));
  make_variable_length(path, "notes", H5O_TYPE_DATASET, "added by hand");
  EXPECT_NO_THROW((void)read_checkpoint(path));  // /notes is no part of the layout, so not read
  EXPECT_THAT(checkpoint_error([&] { (void)verify_checkpoint(path); }),
              HasSubstr("dataset /notes holds variable-length values"));
}

}  // namespace
}  // namespace dptrain
