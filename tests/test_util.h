// Helpers shared by the test folders: temporary folders, reading a whole file, the message of an
// expected exception, a comparison of data sets, the parameters of a run's newest checkpoint and how
// far two parameter vectors are apart, two checkpoints compared bit for bit, and the environment that
// keeps Open MPI on loopback for tests that start mpirun.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/dataset.h"

namespace dptrain::test_util {

// A fresh folder under the system's temporary folder, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "dptrain_test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

// An empty folder <tmp>/<prefix>_<pid>/<name>, emptied if it exists.
inline std::string temp_dir(const std::string& prefix, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The whole content of a file ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The message of the exception of type E that `f` throws; a test failure (and "") when it throws
// nothing or another exception.
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "nothing was thrown";
  return "";
}

// Every sample and label of two data sets are equal.
inline void expect_same_samples(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.sample_shape(), b.sample_shape());
  const size_t per = num_elements(a.sample_shape());
  std::vector<float> x(per), y(per);
  for (size_t i = 0; i < a.size(); ++i) {
    int32_t la = -1, lb = -2;
    a.get(i, x.data(), &la);
    b.get(i, y.data(), &lb);
    ASSERT_EQ(x, y) << "sample " << i;
    ASSERT_EQ(la, lb) << "sample " << i;
  }
}

// The parameters of the newest checkpoint in `dir`, flattened in order (empty when there is none).
inline std::vector<float> final_parameters(const std::string& dir) {
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  if (files.empty()) return {};
  std::vector<float> flat;
  for (const CheckpointTensor& t : read_checkpoint(files[0].path).parameters) {
    flat.insert(flat.end(), t.values.begin(), t.values.end());
  }
  return flat;
}

// max |reference - other| / ||reference||; infinite when the sizes differ.
inline double relative_difference(const std::vector<float>& reference, const std::vector<float>& other) {
  if (reference.size() != other.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0, norm = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(reference[i]) - other[i]));
    norm += static_cast<double>(reference[i]) * reference[i];
  }
  return max_diff / std::sqrt(norm);
}

// The newest checkpoint in `dir`, read whole; a test failure and an empty state when there is none.
inline CheckpointState newest_checkpoint(const std::string& dir) {
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  if (files.empty()) {
    ADD_FAILURE() << "no checkpoint in " << dir;
    return {};
  }
  return read_checkpoint(files[0].path);
}

// How two checkpoints' tensors (parameters, buffers, optimizer state) differ, bit for bit.
struct BitDifference {
  size_t values = 0;                 // float values compared
  size_t differing = 0;              // values whose bit patterns differ (+0 and -0 differ)
  double max_abs = 0;                // max |a - b| over all values
  std::vector<std::string> tensors;  // "NAME (N values, max |difference| D)" of every tensor that differs
  std::string mismatch;              // positions, tensor names or shapes that differ; "" when they match
  bool identical() const { return differing == 0 && mismatch.empty(); }
};

// Compares `a` and `b` tensor by tensor (named "buffers/NAME", "OPTIMIZER STATE/NAME" beside the
// parameters' own names) and their positions (global step, optimizer steps).
inline BitDifference bit_difference(const CheckpointState& a, const CheckpointState& b) {
  BitDifference d;
  auto compare = [&d](const std::string& prefix, const std::vector<CheckpointTensor>& x,
                      const std::vector<CheckpointTensor>& y) {
    if (x.size() != y.size()) {
      d.mismatch += prefix + "tensors: " + std::to_string(x.size()) + " vs " + std::to_string(y.size()) + "; ";
      return;
    }
    for (size_t t = 0; t < x.size(); ++t) {
      const std::string name = prefix + x[t].name;
      if (x[t].name != y[t].name || x[t].shape != y[t].shape || x[t].values.size() != y[t].values.size()) {
        d.mismatch += name + " vs " + prefix + y[t].name + " (name or shape); ";
        continue;
      }
      size_t differing = 0;
      double max_abs = 0;
      for (size_t i = 0; i < x[t].values.size(); ++i) {
        uint32_t xb = 0, yb = 0;
        std::memcpy(&xb, &x[t].values[i], sizeof xb);
        std::memcpy(&yb, &y[t].values[i], sizeof yb);
        if (xb == yb) continue;
        ++differing;
        max_abs = std::max(max_abs, std::fabs(static_cast<double>(x[t].values[i]) - y[t].values[i]));
      }
      d.values += x[t].values.size();
      d.differing += differing;
      d.max_abs = std::max(d.max_abs, max_abs);
      if (differing) {
        std::ostringstream line;
        line << name << " (" << differing << " values, max |difference| " << max_abs << ")";
        d.tensors.push_back(line.str());
      }
    }
  };
  if (a.global_step != b.global_step || a.optimizer_steps != b.optimizer_steps) {
    d.mismatch += "global step " + std::to_string(a.global_step) + " vs " + std::to_string(b.global_step) +
                  ", optimizer steps " + std::to_string(a.optimizer_steps) + " vs " +
                  std::to_string(b.optimizer_steps) + "; ";
  }
  compare("", a.parameters, b.parameters);
  compare("buffers/", a.buffers, b.buffers);
  if (a.optimizer_state.size() != b.optimizer_state.size()) {
    d.mismatch += "optimizer states: " + std::to_string(a.optimizer_state.size()) + " vs " +
                  std::to_string(b.optimizer_state.size()) + "; ";
  } else {
    for (size_t s = 0; s < a.optimizer_state.size(); ++s) {
      compare(a.optimizer_state[s].name + "/", a.optimizer_state[s].tensors, b.optimizer_state[s].tensors);
    }
  }
  return d;
}

// Waits up to `seconds` for a checkpoint of epoch `epoch` or later in `dir` (which may not exist yet).
inline bool wait_for_checkpoint(const std::string& dir, size_t epoch, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) {
      for (const CheckpointFile& f : list_checkpoints(dir)) {
        if (f.epoch >= epoch) return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The `model:` section of a small CNN for [1, 8, 8] inputs of 3 classes (convolution, pooling, two
// dense layers with dropout between them), for configs written by tests.
inline const std::string kSmallCnnModel = R"(model:
  - {type: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {type: relu}
  - {type: max_pool2d, kernel: 2}
  - {type: flatten}
  - {type: dense, units: 16}
  - {type: relu}
  - {type: dropout, rate: 0.25}
  - {type: dense, units: 3}
  - {type: softmax_cross_entropy}
)";

// `env` with Open MPI on loopback, allowed to run as root, and one compute thread per rank.
inline const std::string kMpiEnv =
    "env OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo OMPI_ALLOW_RUN_AS_ROOT=1 "
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ";
// mpirun under kMpiEnv with a hard time limit, more ranks than cores allowed.
inline const std::string kMpirun = kMpiEnv + "timeout 120 mpirun --oversubscribe --bind-to none ";

}  // namespace dptrain::test_util
