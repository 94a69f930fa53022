// Checkpoint files: round trips, damaged and foreign files, choosing, pruning, model and optimizer state.
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

#include "runtime/checkpoint.h"
#include "runtime/config_map.h"
#include "runtime/errors.h"
#include "runtime/model.h"
#include "runtime/optimizer.h"
#include "tests/test_util.h"

namespace dptrain {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;

// A tensor whose values are `first`, `first + step`, ...
CheckpointTensor ramp(const std::string& name, Shape shape, float first, float step) {
  std::vector<float> values(num_elements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = first + step * static_cast<float>(i);
  return {name, std::move(shape), std::move(values)};
}

// A complete checkpoint of a small three-tensor model trained with Adam, at (epoch, step); values depend on step.
CheckpointState sample_state(uint64_t epoch, uint64_t global_step) {
  const float base = static_cast<float>(global_step);
  CheckpointState state;
  state.run_name = "fashion_mnist_small";
  state.config_text = "name: fashion_mnist_small\nseed: 7\nmodel:\n  - type: conv2d  # µ-test ✓\n";
  state.seed = 7;
  state.epoch = epoch;
  state.step_in_epoch = 5;
  state.global_step = global_step;
  state.steps_per_epoch = 40;
  state.global_batch = 64;
  state.dataset_size = 2560;
  state.world_size = 3;
  state.parameters = {ramp("0.conv2d.weight", {4, 1, 3, 3}, base, 0.25f), ramp("0.conv2d.bias", {4}, -base, 1.0f),
                      ramp("3.dense.weight", {10, 36}, 1234.5f, 0.5f)};
  state.optimizer_name = "adam";
  state.optimizer_steps = global_step;
  for (const char* name : {"exp_avg", "exp_avg_sq"}) {
    CheckpointOptimizerState s{name, {}};
    for (const CheckpointTensor& p : state.parameters) s.tensors.push_back(ramp(p.name, p.shape, 0.001f * base, 1e-4f));
    state.optimizer_state.push_back(std::move(s));
  }
  state.metrics_json = R"({"event":"epoch","epoch":2,"loss":0.5})";
  return state;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the CheckpointError that `action` throws; "" when it throws none.
std::string checkpoint_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void expect_same_tensors(const std::vector<CheckpointTensor>& a, const std::vector<CheckpointTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_TRUE(same_bits(a[i].values, b[i].values)) << a[i].name;
  }
}

// Opens `path` for writing with HDF5 directly, to damage it in a specific way.
template <typename Edit>
void edit_hdf5(const std::string& path, Edit edit) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  edit(file);
  ASSERT_GE(H5Fclose(file), 0);
}

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

// ---- Choosing and pruning ----

TEST(CheckpointFiles, ListSortsByPositionNewestFirstAndIgnoresOtherFiles) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_state(1, 10));
  save_checkpoint(dir.path(), sample_state(2, 20));
  save_checkpoint(dir.path(), sample_state(10, 100));
  fs::copy_file(dir.file("ckpt-e000002-s00000020.h5"), dir.file("ckpt-e2-s25.h5"));  // narrow digits
  write_bytes(dir.file("notes.txt"), "x");
  write_bytes(dir.file(".ckpt-e000011-s00000110.h5.tmp-123"), "partial");
  write_bytes(dir.file("ckpt-e000001-s00000010.h5.bak"), "x");
  fs::create_directory(dir.file("ckpt-e000099-s00000999.h5"));

  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].path, dir.file("ckpt-e000010-s00000100.h5"));
  EXPECT_EQ(files[0].epoch, 10u);
  EXPECT_EQ(files[0].global_step, 100u);
  EXPECT_EQ(files[1].path, dir.file("ckpt-e2-s25.h5"));
  EXPECT_EQ(files[2].path, dir.file("ckpt-e000002-s00000020.h5"));
  EXPECT_EQ(files[3].path, dir.file("ckpt-e000001-s00000010.h5"));
  EXPECT_TRUE(list_checkpoints(dir.file("not-there")).empty());
  EXPECT_FALSE(checkpoint_error([&] { list_checkpoints(dir.file("notes.txt")); }).empty());
}

TEST(CheckpointFiles, ResumeSkipsADamagedNewestCheckpoint) {
  TempDir dir;
  save_checkpoint(dir.path(), sample_state(1, 10));
  save_checkpoint(dir.path(), sample_state(2, 20));
  const std::string newest = save_checkpoint(dir.path(), sample_state(3, 30));
  const std::string bytes = read_bytes(newest);
  write_bytes(newest, bytes.substr(0, bytes.size() / 2));

  const ResumeCheckpoint resume = find_resume_checkpoint(dir.path());
  ASSERT_TRUE(resume.found());
  EXPECT_EQ(resume.path, dir.file("ckpt-e000002-s00000020.h5"));
  EXPECT_EQ(resume.state.global_step, 20u);
  expect_same_tensors(resume.state.parameters, sample_state(2, 20).parameters);
  ASSERT_EQ(resume.skipped.size(), 1u);
  EXPECT_EQ(resume.skipped[0].path, newest);
  EXPECT_NE(resume.skipped[0].reason.find("truncated"), std::string::npos) << resume.skipped[0].reason;
  EXPECT_EQ(resume.skipped[0].reason.find(newest), std::string::npos) << "the reason repeats the file name";
}

TEST(CheckpointFiles, ResumeFindsNothingWhenNothingVerifies) {
  TempDir dir;
  EXPECT_FALSE(find_resume_checkpoint(dir.path()).found());
  EXPECT_FALSE(find_resume_checkpoint(dir.file("absent")).found());
  write_bytes(dir.file("ckpt-e000001-s00000001.h5"), "");
  write_bytes(dir.file("ckpt-e000002-s00000002.h5"), "garbage");
  const ResumeCheckpoint resume = find_resume_checkpoint(dir.path());
  EXPECT_FALSE(resume.found());
  ASSERT_EQ(resume.skipped.size(), 2u);
  EXPECT_EQ(resume.skipped[0].path, dir.file("ckpt-e000002-s00000002.h5"));
}

TEST(CheckpointFiles, PruneKeepsTheNewest) {
  TempDir dir;
  for (uint64_t step = 1; step <= 5; ++step) save_checkpoint(dir.path(), sample_state(step, step * 10));
  const PruneResult result = prune_checkpoints(dir.path(), 2);
  EXPECT_EQ(result.removed.size(), 3u);
  const std::vector<CheckpointFile> left = list_checkpoints(dir.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].global_step, 50u);
  EXPECT_EQ(left[1].global_step, 40u);
  EXPECT_TRUE(prune_checkpoints(dir.path(), 2).removed.empty());
  EXPECT_FALSE(checkpoint_error([&] { prune_checkpoints(dir.path(), 0); }).empty());
}

TEST(CheckpointFiles, PruneNeverDeletesTheNewestValidCheckpoint) {
  TempDir dir;
  for (uint64_t step = 1; step <= 4; ++step) save_checkpoint(dir.path(), sample_state(step, step * 10));
  write_bytes(dir.file("ckpt-e000004-s00000040.h5"), "damaged");
  write_bytes(dir.file("ckpt-e000003-s00000030.h5"), "damaged");
  prune_checkpoints(dir.path(), 1);
  const std::vector<CheckpointFile> left = list_checkpoints(dir.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].global_step, 40u);  // the newest, kept though damaged
  EXPECT_EQ(left[1].global_step, 20u);  // the newest that verifies
  EXPECT_EQ(find_resume_checkpoint(dir.path()).path, dir.file("ckpt-e000002-s00000020.h5"));
}

TEST(CheckpointFiles, PruneRemovesOnlyStaleTemporaryFilesOfOtherProcesses) {
  TempDir dir;
  const std::string stale = dir.file(".ckpt-e000001-s00000001.h5.tmp-999999");
  const std::string fresh = dir.file(".ckpt-e000001-s00000002.h5.tmp-999998");
  const std::string ours = dir.file(".ckpt-e000001-s00000003.h5.tmp-" + std::to_string(::getpid()));
  const std::string other_tool = dir.file(".data.h5.tmp-77");
  const std::string notes = dir.file("old-notes.tmp-5");
  for (const std::string& path : {stale, fresh, ours, other_tool, notes}) write_bytes(path, "partial");
  const time_t long_ago = std::time(nullptr) - 7200;
  const struct utimbuf times = {long_ago, long_ago};
  for (const std::string& path : {stale, ours, other_tool, notes}) ASSERT_EQ(::utime(path.c_str(), &times), 0);
  save_checkpoint(dir.path(), sample_state(1, 1));

  const PruneResult result = prune_checkpoints(dir.path(), 1);
  EXPECT_EQ(result.removed_temp_files, std::vector<std::string>{stale});
  EXPECT_FALSE(fs::exists(stale));
  for (const std::string& path : {fresh, ours, other_tool, notes}) EXPECT_TRUE(fs::exists(path)) << path;
  EXPECT_EQ(list_checkpoints(dir.path()).size(), 1u);
}

// ---- Model and optimizer state ----

// Two parameters laid out with padding, as Model lays them out.
std::vector<ParamEntry> padded_entries() { return {{0, "0.dense.weight", {3, 5}, 0}, {0, "0.dense.bias", {3}, 16}}; }

TEST(CheckpointModel, FlatBuffersRoundTripAndKeepPadding) {
  Tensor flat({32});
  for (size_t i = 0; i < 32; ++i) flat.data()[i] = static_cast<float>(i) + 0.5f;
  const std::vector<CheckpointTensor> tensors = tensors_from_flat(padded_entries(), flat);
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].values.size(), 15u);
  EXPECT_EQ(tensors[1].values, (std::vector<float>{16.5f, 17.5f, 18.5f}));

  Tensor restored({32});
  restored.fill(-1.0f);
  std::vector<CheckpointTensor> reversed = {tensors[1], tensors[0]};  // matched by name, not position
  tensors_to_flat(reversed, padded_entries(), restored, "x.h5");
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(restored.data()[i], flat.data()[i]);
  EXPECT_EQ(restored.data()[15], -1.0f);  // padding untouched
  for (size_t i = 16; i < 19; ++i) EXPECT_EQ(restored.data()[i], flat.data()[i]);
  EXPECT_THROW(tensors_from_flat(padded_entries(), Tensor({18})), ShapeError);
}

TEST(CheckpointModel, ParametersOfAnotherModelAreRefusedBeforeAnythingIsCopied) {
  Tensor flat({32});
  flat.fill(2.0f);
  std::vector<CheckpointTensor> tensors = tensors_from_flat(padded_entries(), flat);
  Tensor target({32});
  target.fill(-1.0f);

  std::vector<CheckpointTensor> wrong_shape = tensors;
  wrong_shape[1].shape = {1, 3};
  std::string message = checkpoint_error([&] { tensors_to_flat(wrong_shape, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("run.h5: parameter '0.dense.bias' has shape (1, 3), but the model's is (3)"),
            std::string::npos)
      << message;
  EXPECT_EQ(target.data()[0], -1.0f);

  std::vector<CheckpointTensor> renamed = tensors;
  renamed[0].name = "0.conv2d.weight";
  message = checkpoint_error([&] { tensors_to_flat(renamed, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("has no parameter '0.dense.weight'"), std::string::npos) << message;

  std::vector<CheckpointTensor> extra = tensors;
  extra.push_back({"9.dense.bias", {1}, {0.0f}});
  message = checkpoint_error([&] { tensors_to_flat(extra, padded_entries(), target, "run.h5"); });
  EXPECT_NE(message.find("'9.dense.bias', which the model lacks"), std::string::npos) << message;
}

std::unique_ptr<Optimizer> build_optimizer(const std::string& body, size_t num_parameters) {
  ConfigMap root = ConfigMap::parse("optimizer:\n" + body, "run.yaml");
  ConfigMap config = root.get_map("optimizer");
  auto optimizer = make_optimizer(config, num_parameters);
  config.finish();
  return optimizer;
}

TEST(CheckpointModel, OptimizerStateSurvivesACheckpointAndContinuesIdentically) {
  TempDir dir;
  const std::vector<ParamEntry> entries = padded_entries();
  auto original = build_optimizer("  type: adam\n  lr: 0.01\n", 32);
  Tensor params({32}), grads({32});
  for (size_t i = 0; i < 32; ++i) params.data()[i] = 0.1f * static_cast<float>(i);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < 32; ++i) grads.data()[i] = std::sin(0.3f * static_cast<float>(i) + step);
    original->step(params, grads, 0.01f);
  }
  CheckpointState state;
  state.parameters = tensors_from_flat(entries, params);
  capture_optimizer(*original, entries, state);
  EXPECT_EQ(state.optimizer_name, "adam");
  EXPECT_EQ(state.optimizer_steps, 3u);
  ASSERT_EQ(state.optimizer_state.size(), 2u);
  const std::string path = dir.file("opt.h5");
  write_checkpoint(path, state);

  const CheckpointState back = read_checkpoint(path);
  auto resumed = build_optimizer("  type: adam\n  lr: 0.01\n", 32);
  Tensor resumed_params({32});
  tensors_to_flat(back.parameters, entries, resumed_params, path);
  restore_optimizer(back, entries, *resumed, path);
  EXPECT_EQ(resumed->steps(), 3u);

  for (size_t i = 0; i < 32; ++i) grads.data()[i] = 0.5f;
  original->step(params, grads, 0.01f);
  resumed->step(resumed_params, grads, 0.01f);
  for (const ParamEntry& e : entries) {
    for (size_t i = e.offset; i < e.offset + num_elements(e.shape); ++i) {
      EXPECT_EQ(resumed_params.data()[i], params.data()[i]) << i;
    }
  }
}

TEST(CheckpointModel, AnotherOptimizerIsRefused) {
  const std::vector<ParamEntry> entries = padded_entries();
  CheckpointState state;
  capture_optimizer(*build_optimizer("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n", 32), entries, state);
  std::string message = checkpoint_error(
      [&] { restore_optimizer(state, entries, *build_optimizer("  type: adam\n  lr: 0.1\n", 32), "run.h5"); });
  EXPECT_NE(message.find("run.h5: was written by optimizer 'sgd', but the config builds 'adam'"), std::string::npos)
      << message;
  message = checkpoint_error(
      [&] { restore_optimizer(state, entries, *build_optimizer("  type: sgd\n  lr: 0.1\n", 32), "run.h5"); });
  EXPECT_NE(message.find("holds optimizer state [momentum], but the configured sgd keeps []"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace dptrain
