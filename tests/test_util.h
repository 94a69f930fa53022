// Helpers shared by the test folders: temporary folders, reading a whole file, the message of an
// expected exception, a comparison of data sets, and the environment that keeps Open MPI on loopback for tests that start mpirun.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/dataset.h"

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

// `env` with Open MPI on loopback, allowed to run as root, and one compute thread per rank.
inline const std::string kMpiEnv =
    "env OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo OMPI_ALLOW_RUN_AS_ROOT=1 "
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ";
// mpirun under kMpiEnv with a hard time limit, more ranks than cores allowed.
inline const std::string kMpirun = kMpiEnv + "timeout 120 mpirun --oversubscribe --bind-to none ";

}  // namespace dptrain::test_util
