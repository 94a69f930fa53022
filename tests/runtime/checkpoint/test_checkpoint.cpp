// Checkpoint files: round trips, and damaged and foreign files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>
#include <utime.h>

#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

using test_util::TempDir;
using namespace checkpoint_test;


TEST(CheckpointIo, RoundTripKeepsEveryFieldBitForBit) {
  TempDir dir;
  CheckpointState state = sample_state(3, 123);
  std::vector<float>& v = state.parameters[0].values;
  v[0] = -0.0f;
  v[1] = std::numeric_limits<float>::infinity();
  v[2] = -std::numeric_limits<float>::infinity();
  v[3] = std::numeric_limits<float>::denorm_min();
  v[4] = std::numeric_limits<float>::quiet_NaN();
  v[5] = std::nextafter(1.0f, 2.0f);
  const std::string path = dir.file("a.h5");
  write_checkpoint(path, state);
  const CheckpointState back = read_checkpoint(path);

  EXPECT_EQ(back.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(back.dptrain_version, DPTRAIN_VERSION);
  EXPECT_EQ(back.run_name, state.run_name);
  EXPECT_EQ(back.config_text, state.config_text);
  EXPECT_EQ(back.seed, 7u);
  EXPECT_EQ(back.epoch, 3u);
  EXPECT_EQ(back.step_in_epoch, 5u);
  EXPECT_EQ(back.global_step, 123u);
  EXPECT_EQ(back.steps_per_epoch, 40u);
  EXPECT_EQ(back.global_batch, 64u);
  EXPECT_EQ(back.dataset_size, 2560u);
  EXPECT_EQ(back.world_size, 3u);
  EXPECT_EQ(back.optimizer_name, "adam");
  EXPECT_EQ(back.optimizer_steps, 123u);
  EXPECT_EQ(back.metrics_json, state.metrics_json);
  expect_same_tensors(back.parameters, state.parameters);
  ASSERT_EQ(back.optimizer_state.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.optimizer_state[i].name, state.optimizer_state[i].name);
    expect_same_tensors(back.optimizer_state[i].tensors, state.optimizer_state[i].tensors);
  }
}

TEST(CheckpointIo, EmptyTextsPlainSgdAndLargeChunkedTensorsRoundTrip) {
  TempDir dir;
  CheckpointState state;
  state.optimizer_name = "sgd";
  state.parameters = {ramp("big", {700, 1000}, 0.0f, 1e-3f), ramp("long", {300000}, 1.0f, 1.0f)};
  const std::string path = dir.file("b.h5");
  write_checkpoint(path, state);
  const CheckpointState back = read_checkpoint(path);
  EXPECT_EQ(back.run_name, "");
  EXPECT_EQ(back.config_text, "");
  EXPECT_EQ(back.metrics_json, "");
  EXPECT_TRUE(back.optimizer_state.empty());
  expect_same_tensors(back.parameters, state.parameters);
  EXPECT_EQ(verify_checkpoint(path), 4u);  // config, metrics and two tensors
}

TEST(CheckpointIo, HeaderReadHasNamesAndShapesButNoValues) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  write_checkpoint(path, sample_state(1, 10));
  const CheckpointState header = read_checkpoint(path, CheckpointContents::Header);
  ASSERT_EQ(header.parameters.size(), 3u);
  EXPECT_EQ(header.parameters[2].name, "3.dense.weight");
  EXPECT_EQ(header.parameters[2].shape, (Shape{10, 36}));
  EXPECT_TRUE(header.parameters[2].values.empty());
  EXPECT_EQ(header.optimizer_state[1].tensors[0].shape, (Shape{4, 1, 3, 3}));
  EXPECT_EQ(header.global_step, 10u);
}

TEST(CheckpointIo, ParametersKeepModelOrderNotNameOrder) {
  TempDir dir;
  CheckpointState state;
  state.optimizer_name = "sgd";
  for (const char* name : {"10.dense.weight", "2.conv2d.weight", "1.conv2d.bias"}) {
    state.parameters.push_back(ramp(name, {2}, 0, 1));
  }
  write_checkpoint(dir.file("d.h5"), state);
  const CheckpointState back = read_checkpoint(dir.file("d.h5"));
  ASSERT_EQ(back.parameters.size(), 3u);
  EXPECT_EQ(back.parameters[0].name, "10.dense.weight");
  EXPECT_EQ(back.parameters[1].name, "2.conv2d.weight");
  EXPECT_EQ(back.parameters[2].name, "1.conv2d.bias");
}

TEST(CheckpointIo, VerifyCountsEveryDataset) {
  TempDir dir;
  const std::string path = dir.file("e.h5");
  write_checkpoint(path, sample_state(1, 10));
  EXPECT_EQ(verify_checkpoint(path), 2u + 3u + 2u * 3u);
}

TEST(CheckpointIo, FileNamesSortByPosition) {
  EXPECT_EQ(checkpoint_file_name(3, 123), "ckpt-e000003-s00000123.h5");
  EXPECT_EQ(checkpoint_file_name(0, 0), "ckpt-e000000-s00000000.h5");
  EXPECT_LT(checkpoint_file_name(2, 99999999), checkpoint_file_name(10, 100000000));
}

TEST(CheckpointIo, SaveCreatesTheFolderAndReplacesTheSamePosition) {
  TempDir dir;
  const std::string folder = dir.file("run/checkpoints");
  const std::string path = save_checkpoint(folder, sample_state(2, 80));
  EXPECT_EQ(path, folder + "/ckpt-e000002-s00000080.h5");
  CheckpointState second = sample_state(2, 80);
  second.run_name = "second";
  EXPECT_EQ(save_checkpoint(folder, second), path);
  EXPECT_EQ(read_checkpoint(path).run_name, "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(folder), fs::directory_iterator()), 1);
}

TEST(CheckpointIo, FailedWriteLeavesTheOldFileAndNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt-e000001-s00000010.h5");
  write_checkpoint(path, sample_state(1, 10));
  const std::string before = read_bytes(path);

  CheckpointState bad = sample_state(1, 10);
  bad.run_name = "bad";
  bad.parameters[2].values.pop_back();  // found only after the file was created and half written
  const std::string message = checkpoint_error([&] { write_checkpoint(path, bad); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("3.dense.weight"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);

  CheckpointState mismatched = sample_state(1, 10);
  mismatched.optimizer_state[0].tensors[1].shape = {2, 2};
  mismatched.optimizer_state[0].tensors[1].values.resize(4);
  EXPECT_NE(checkpoint_error([&] { write_checkpoint(path, mismatched); }).find("exp_avg"), std::string::npos);
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(CheckpointIo, BadNamesAndMissingFoldersAreRefused) {
  TempDir dir;
  CheckpointState state = sample_state(1, 1);
  state.parameters[1].name = "0/bias";
  EXPECT_NE(checkpoint_error([&] { write_checkpoint(dir.file("x.h5"), state); }).find("'0/bias'"), std::string::npos);
  const std::string missing = dir.file("nowhere/x.h5");
  EXPECT_NE(checkpoint_error([&] { write_checkpoint(missing, sample_state(1, 1)); }).find("does not exist"),
            std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 0);
}

// ---- Damaged and foreign files ----

TEST(CheckpointCorruption, TruncatedFilesAreReportedAtEveryLength) {
  TempDir dir;
  const std::string good = dir.file("good.h5");
  write_checkpoint(good, sample_state(1, 10));
  const std::string bytes = read_bytes(good);
  ASSERT_GT(bytes.size(), 4096u);
  for (size_t length :
       {size_t{7}, size_t{48}, size_t{512}, size_t{2048}, bytes.size() / 2, bytes.size() - 100, bytes.size() - 1}) {
    const std::string path = dir.file("cut-" + std::to_string(length) + ".h5");
    write_bytes(path, bytes.substr(0, length));
    const std::string message = checkpoint_error([&] { read_checkpoint(path); });
    EXPECT_NE(message.find(path), std::string::npos) << "length " << length << ": " << message;
    EXPECT_FALSE(checkpoint_error([&] { verify_checkpoint(path); }).empty()) << length;
    EXPECT_FALSE(checkpoint_error([&] { read_checkpoint(path, CheckpointContents::Header); }).empty()) << length;
  }
}

TEST(CheckpointCorruption, FlippedByteInTensorDataFailsItsChecksum) {
  TempDir dir;
  const std::string path = dir.file("flip.h5");
  write_checkpoint(path, sample_state(1, 10));
  std::string bytes = read_bytes(path);
  // 3.dense.weight starts 1234.5, 1235.0, 1235.5, 1236.0: find those bytes in the file.
  const float pattern[4] = {1234.5f, 1235.0f, 1235.5f, 1236.0f};
  const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(pattern), sizeof(pattern)));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 100] = static_cast<char>(bytes[at + 100] ^ 0x10);
  write_bytes(path, bytes);

  const std::string message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("/parameters/3.dense.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("Fletcher32"), std::string::npos) << message;
  EXPECT_NE(checkpoint_error([&] { verify_checkpoint(path); }).find("Fletcher32"), std::string::npos);
  // The header does not read the values, so it still loads.
  EXPECT_EQ(read_checkpoint(path, CheckpointContents::Header).global_step, 10u);
}

TEST(CheckpointCorruption, FlippedByteInAttributesFailsTheMetadataChecksum) {
  TempDir dir;
  const std::string path = dir.file("meta.h5");
  CheckpointState state = sample_state(1, 10);
  state.run_name = "run-name-to-damage";
  write_checkpoint(path, state);
  std::string bytes = read_bytes(path);
  const size_t at = bytes.find("run-name-to-damage");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4] = 'X';
  write_bytes(path, bytes);
  const std::string message = checkpoint_error([&] { read_checkpoint(path, CheckpointContents::Header); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST(CheckpointCorruption, ForeignTextEmptyAndMissingFilesAreNamed) {
  TempDir dir;
  const std::string foreign = dir.file("foreign.h5");
  {
    const hid_t file = H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t n = 3;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t data = H5Dcreate2(file, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const float values[3] = {1, 2, 3};
    H5Dwrite(data, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    H5Dclose(data);
    H5Sclose(space);
    ASSERT_GE(H5Fclose(file), 0);
  }
  std::string message = checkpoint_error([&] { read_checkpoint(foreign); });
  EXPECT_NE(message.find(foreign + ": is an HDF5 file but not a dptrain checkpoint"), std::string::npos) << message;
  EXPECT_NE(checkpoint_error([&] { verify_checkpoint(foreign); }).find("not a dptrain checkpoint"), std::string::npos);
  EXPECT_EQ(checkpoint_layout(foreign).size(), 1u);  // any HDF5 file can be listed

  const std::string text = dir.file("notes.h5");
  write_bytes(text, "epoch: 3\nthis is not HDF5\n");
  message = checkpoint_error([&] { read_checkpoint(text); });
  EXPECT_NE(message.find(text + ": is not an HDF5 file"), std::string::npos) << message;

  const std::string empty = dir.file("empty.h5");
  write_bytes(empty, "");
  message = checkpoint_error([&] { read_checkpoint(empty); });
  EXPECT_NE(message.find(empty + ": is empty"), std::string::npos) << message;

  message = checkpoint_error([&] { read_checkpoint(dir.file("missing.h5")); });
  EXPECT_NE(message.find("missing.h5: no such file"), std::string::npos) << message;
}

TEST(CheckpointCorruption, NewerFormatVersionIsRefused) {
  TempDir dir;
  const std::string path = dir.file("future.h5");
  write_checkpoint(path, sample_state(1, 10));
  edit_hdf5(path, [](hid_t file) {
    const hid_t attr = H5Aopen(file, "format_version", H5P_DEFAULT);
    const uint32_t version = 99;
    EXPECT_GE(H5Awrite(attr, H5T_NATIVE_UINT32, &version), 0);
    H5Aclose(attr);
  });
  const std::string message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find(path + ": has checkpoint format version 99"), std::string::npos) << message;
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
}

TEST(CheckpointCorruption, MissingDatasetsAndAttributesAreNamed) {
  TempDir dir;
  const std::string path = dir.file("holes.h5");
  write_checkpoint(path, sample_state(1, 10));
  edit_hdf5(path,
            [](hid_t file) { EXPECT_GE(H5Ldelete(file, "/optimizer/exp_avg_sq/0.conv2d.bias", H5P_DEFAULT), 0); });
  std::string message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find("has no dataset /optimizer/exp_avg_sq/0.conv2d.bias"), std::string::npos) << message;

  write_checkpoint(path, sample_state(1, 10));
  edit_hdf5(path, [](hid_t file) { EXPECT_GE(H5Adelete(file, "global_step"), 0); });
  message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find("has no attribute 'global_step'"), std::string::npos) << message;

  write_checkpoint(path, sample_state(1, 10));
  edit_hdf5(path, [](hid_t file) { EXPECT_GE(H5Ldelete(file, "/config", H5P_DEFAULT), 0); });
  message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find("has no dataset /config"), std::string::npos) << message;
}

TEST(CheckpointCorruption, OptimizerStateOfAnotherShapeIsReported) {
  TempDir dir;
  const std::string path = dir.file("shape.h5");
  write_checkpoint(path, sample_state(1, 10));
  edit_hdf5(path, [](hid_t file) {
    EXPECT_GE(H5Ldelete(file, "/optimizer/exp_avg/0.conv2d.bias", H5P_DEFAULT), 0);
    const hsize_t n = 5;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t data = H5Dcreate2(file, "/optimizer/exp_avg/0.conv2d.bias", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(data, 0);
    H5Dclose(data);
    H5Sclose(space);
  });
  const std::string message = checkpoint_error([&] { read_checkpoint(path); });
  EXPECT_NE(message.find("/optimizer/exp_avg/0.conv2d.bias has shape (5), but /parameters/0.conv2d.bias has shape (4)"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace dptrain
