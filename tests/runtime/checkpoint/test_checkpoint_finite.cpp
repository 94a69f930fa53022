// A checkpoint holding nan or inf in its parameters, buffers or optimizer state is refused for resuming
// or evaluating, naming the file and the dataset; the file itself still reads (for inspect).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <limits>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/finite_values.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::TempDir;
using namespace checkpoint_test;

// Overwrites dataset `name` of the checkpoint at `path` with `values` (checksums are recomputed).
void overwrite(const std::string& path, const std::string& name, const std::vector<float>& values) {
  edit_hdf5(path, [&](hid_t file) {
    const hid_t dataset = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    ASSERT_GE(dataset, 0) << name;
    ASSERT_GE(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    H5Dclose(dataset);
  });
}

TEST(CheckpointFinite, NanParameterIsRefusedNamingFileAndDataset) {
  TempDir dir;
  const std::string path = dir.path() + "/ckpt.h5";
  CheckpointState state = sample_state(1, 10);
  write_checkpoint(path, state);
  std::vector<float> values = state.parameters[1].values;
  values[2] = std::numeric_limits<float>::quiet_NaN();
  overwrite(path, "/parameters/0.conv2d.bias", values);
  const std::string message = checkpoint_error([&] { refuse_non_finite(path, read_checkpoint(path)); });
  EXPECT_NE(message.find(path + ": dataset /parameters/0.conv2d.bias (element 2 of 4: nan) holds a non-finite value"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("resume from an earlier checkpoint"), std::string::npos) << message;
  EXPECT_NO_THROW(read_checkpoint(path));  // the file itself reads (inspect shows it); resuming refuses it
}

TEST(CheckpointFinite, InfOptimizerStateIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/ckpt.h5";
  CheckpointState state = sample_state(1, 10);
  write_checkpoint(path, state);
  std::vector<float> values = state.optimizer_state[1].tensors[2].values;
  values.back() = -std::numeric_limits<float>::infinity();
  overwrite(path, "/optimizer/exp_avg_sq/3.dense.weight", values);
  const std::string message = checkpoint_error([&] { refuse_non_finite(path, read_checkpoint(path)); });
  EXPECT_NE(message.find("dataset /optimizer/exp_avg_sq/3.dense.weight (element 359 of 360: -inf)"), std::string::npos)
      << message;
}

TEST(CheckpointFinite, FindsTheFirstNonFiniteTensor) {
  CheckpointState state = sample_state(1, 10);
  EXPECT_FALSE(non_finite_dataset(state));
  state.parameters[2].values[7] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(non_finite_dataset(state).value_or(""), "dataset /parameters/3.dense.weight (element 7 of 360: inf)");
}

}  // namespace
}  // namespace dptrain
