// Helpers of the checkpoint tests: sample states, raw file bytes, expected errors and direct HDF5 edits.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"

namespace dptrain::checkpoint_test {

// A tensor whose values are `first`, `first + step`, ...
inline CheckpointTensor ramp(const std::string& name, Shape shape, float first, float step) {
  std::vector<float> values(num_elements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = first + step * static_cast<float>(i);
  return {name, std::move(shape), std::move(values)};
}

// A complete checkpoint of a small three-tensor model trained with Adam, at (epoch, step); values depend on step.
inline CheckpointState sample_state(uint64_t epoch, uint64_t global_step) {
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

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the CheckpointError that `action` throws; "" when it throws none.
inline std::string checkpoint_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

inline void expect_same_tensors(const std::vector<CheckpointTensor>& a, const std::vector<CheckpointTensor>& b) {
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
}  // namespace dptrain::checkpoint_test
