// The optional root attributes `input_shape` and `class_names` (what `dptrain predict` needs): they round
// trip, a file without them (an older checkpoint) reads as before, and damaged ones are refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/hdf5_util.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using checkpoint_test::checkpoint_error;
using checkpoint_test::edit_hdf5;
using checkpoint_test::expect_same_tensors;
using checkpoint_test::sample_state;
using test_util::TempDir;
using ::testing::HasSubstr;

CheckpointState named_state() {
  CheckpointState state = sample_state(2, 85);
  state.input_shape = {3, 32, 48};
  state.class_names = {"airplane", "b", "a, \"quoted\" name", "µ-class ✓", ""};
  return state;
}

TEST(CheckpointClassNames, InputShapeAndClassNamesRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  const CheckpointState written = named_state();
  write_checkpoint(path, written);
  for (CheckpointContents contents : {CheckpointContents::Everything, CheckpointContents::Header}) {
    const CheckpointState read = read_checkpoint(path, contents);
    EXPECT_EQ(read.input_shape, written.input_shape);
    EXPECT_EQ(read.class_names, written.class_names);
  }
  expect_same_tensors(read_checkpoint(path).parameters, written.parameters);
  EXPECT_GT(verify_checkpoint(path), 0u);
}

TEST(CheckpointClassNames, AFileWithoutThemReadsAsBefore) {
  TempDir dir;
  // As dptrain wrote checkpoints before it stored them: no attribute at all.
  const std::string path = dir.file("old.h5");
  write_checkpoint(path, named_state());
  edit_hdf5(path, [](hid_t file) {
    ASSERT_GE(H5Adelete(file, "input_shape"), 0);
    ASSERT_GE(H5Adelete(file, "class_names"), 0);
  });
  const CheckpointState read = read_checkpoint(path);
  EXPECT_TRUE(read.input_shape.empty());
  EXPECT_TRUE(read.class_names.empty());
  expect_same_tensors(read.parameters, named_state().parameters);

  // And a state without them writes none.
  const std::string plain = dir.file("plain.h5");
  write_checkpoint(plain, sample_state(1, 40));
  edit_hdf5(plain, [](hid_t file) {
    EXPECT_EQ(H5Aexists(file, "input_shape"), 0);
    EXPECT_EQ(H5Aexists(file, "class_names"), 0);
  });
}

// Replaces root attribute `name` with `count` values of `type` taken from `data`.
void replace_attribute(const std::string& path, const char* name, hid_t type, hsize_t count, const void* data) {
  edit_hdf5(path, [&](hid_t file) {
    ASSERT_GE(H5Adelete(file, name), 0);
    const hid_t space = H5Screate_simple(1, &count, nullptr);
    const hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(attr, 0);
    ASSERT_GE(H5Awrite(attr, type, data), 0);
    H5Aclose(attr);
    H5Sclose(space);
  });
}

TEST(CheckpointClassNames, DamagedAttributesAreRefusedByName) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  write_checkpoint(path, named_state());
  const int32_t numbers[2] = {1, 2};
  replace_attribute(path, "class_names", H5T_NATIVE_INT32, 2, numbers);
  std::string error = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_THAT(error, HasSubstr(path));
  EXPECT_THAT(error, HasSubstr("attribute 'class_names' on / is a int32 array of 2, not a list of strings"));

  write_checkpoint(path, named_state());
  const uint64_t shape[3] = {3, 0, 32};
  replace_attribute(path, "input_shape", H5T_NATIVE_UINT64, 3, shape);
  error = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_THAT(error, HasSubstr("attribute 'input_shape' on / has a dimension of 0"));
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
