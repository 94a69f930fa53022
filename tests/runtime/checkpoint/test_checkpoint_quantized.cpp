// Quantized checkpoints (dptrain quantize): int8 weights with their per-channel scales and input
// ranges, read back as the rounded values times the scales; older readers are kept out by the
// format version, and a file whose int8 data and scales do not fit together is refused.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "runtime/core/int8.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::TempDir;
using namespace checkpoint_test;

// sample_state with its conv2d weight (4 output channels) and dense weight (10) quantized.
CheckpointState quantized_state() {
  CheckpointState state = sample_state(3, 40);
  state.optimizer_state.clear();
  state.quantization = {{"0.conv2d.weight", {0.5f, 0.25f, 1.0f, 2.0f}, 3.5f},
                        {"3.dense.weight", std::vector<float>(10, 1000.0f / 127.0f), 0.75f}};
  return state;
}

// The storage type of dataset `path` in `file`.
std::string dataset_type(const std::string& file, const std::string& path) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  const hid_t t = H5Dget_type(d);
  const std::string type = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 ? "int8"
                           : H5Tget_class(t) == H5T_FLOAT                     ? "float"
                                                                                : "other";
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
  return type;
}

TEST(QuantizedCheckpoint, StoresInt8WeightsAndReadsThemBackScaled) {
  TempDir dir;
  const CheckpointState state = quantized_state();
  const std::string path = dir.file("q.h5");
  write_checkpoint(path, state);
  EXPECT_EQ(dataset_type(path, "/parameters/0.conv2d.weight"), "int8");
  EXPECT_EQ(dataset_type(path, "/parameters/0.conv2d.bias"), "float");
  EXPECT_EQ(dataset_type(path, "/quantization/3.dense.weight/scales"), "float");

  const CheckpointState back = read_checkpoint(path);
  EXPECT_EQ(back.format_version, kQuantizedCheckpointFormatVersion);
  ASSERT_EQ(back.quantization.size(), 2u);
  for (size_t q = 0; q < 2; ++q) {
    EXPECT_EQ(back.quantization[q].name, state.quantization[q].name);
    EXPECT_EQ(back.quantization[q].scales, state.quantization[q].scales);
    EXPECT_EQ(back.quantization[q].input_range, state.quantization[q].input_range);
  }
  ASSERT_EQ(back.parameters.size(), state.parameters.size());
  EXPECT_EQ(back.parameters[1].values, state.parameters[1].values);  // the bias stays float32
  for (const size_t p : {size_t{0}, size_t{2}}) {
    const CheckpointTensor& original = state.parameters[p];
    const std::vector<float>& scales = state.quantization[p == 0 ? 0 : 1].scales;
    const size_t per_channel = original.values.size() / original.shape[0];
    for (size_t i = 0; i < original.values.size(); ++i) {
      const float scale = scales[i / per_channel];
      const float expected = static_cast<float>(quantize_weight(original.values[i], scale)) * scale;
      ASSERT_EQ(back.parameters[p].values[i], expected) << original.name << "[" << i << "]";
      // Within half a step of the original, unless beyond 127 steps (clamped).
      if (std::fabs(original.values[i]) < 127 * scale) {
        ASSERT_LE(std::fabs(back.parameters[p].values[i] - original.values[i]), 0.5f * scale * 1.0001f);
      }
    }
  }
  EXPECT_GT(verify_checkpoint(path), 0u);
  const CheckpointState header = read_checkpoint(path, CheckpointContents::Header);
  ASSERT_EQ(header.quantization.size(), 2u);
  EXPECT_EQ(header.quantization[1].name, "3.dense.weight");
}

TEST(QuantizedCheckpoint, OrdinaryCheckpointsKeepFormatVersion2) {
  TempDir dir;
  write_checkpoint(dir.file("a.h5"), sample_state(1, 2));
  EXPECT_EQ(read_checkpoint(dir.file("a.h5")).format_version, kCheckpointFormatVersion);
  EXPECT_EQ(kCheckpointFormatVersion, 2u);
  EXPECT_TRUE(read_checkpoint(dir.file("a.h5")).quantization.empty());
}

TEST(QuantizedCheckpoint, ScalesThatDoNotFitAreRefusedAndNothingIsWritten) {
  TempDir dir;
  CheckpointState state = quantized_state();
  state.quantization[0].scales.pop_back();
  const std::string message = test_util::error_of<CheckpointError>([&] { write_checkpoint(dir.file("q.h5"), state); });
  EXPECT_NE(message.find("3 scales for 4 output channels"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(dir.file("q.h5")));

  state = quantized_state();
  state.quantization[1].name = "9.dense.weight";
  const std::string unknown = test_util::error_of<CheckpointError>([&] { write_checkpoint(dir.file("q.h5"), state); });
  EXPECT_NE(unknown.find("9.dense.weight, which is not a parameter"), std::string::npos) << unknown;
}

TEST(QuantizedCheckpoint, Int8DataWithoutItsScalesIsRefused) {
  TempDir dir;
  const std::string path = dir.file("q.h5");
  write_checkpoint(path, quantized_state());
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(H5Ldelete(f, "/quantization/0.conv2d.weight", H5P_DEFAULT), 0);
  H5Fclose(f);
  const std::string message = test_util::error_of<CheckpointError>([&] { read_checkpoint(path); });
  EXPECT_NE(message.find("int8 parameter /parameters/0.conv2d.weight but no /quantization/0.conv2d.weight"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace dptrain
