// HDF5 data files and strings: the writer stores fixed-length strings in the checksummed HDF5 1.10
// format; the reader never reads variable-length ones (HDF5's global heap has no checksum), and the
// damaged file that once hung it inside HDF5 now returns within a deadline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/data/hdf5_dataset.h"
#include "runtime/data/hdf5_util.h"
#include "runtime/data/hdf5_writer.h"
#include "runtime/data/synthetic_dataset.h"
#include "tests/runtime/data/test_idx_files.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using ::testing::HasSubstr;

// Three 8-bit samples of (1, 2, 2) with two named classes.
class NamedSet : public Dataset {
 public:
  size_t size() const override { return 3; }
  Shape sample_shape() const override { return {1, 2, 2}; }
  size_t num_classes() const override { return 2; }
  void get(size_t index, float* out, int32_t* label) const override {
    for (size_t j = 0; j < 4; ++j) out[j] = static_cast<float>(index * 10 + j) / 255.0f;
    *label = static_cast<int32_t>(index % 2);
  }
  std::string describe() const override { return "named"; }
  std::vector<std::string> class_names() const override { return {"cat", "a longer name ✓"}; }
};

Hdf5Source train_source(const std::string& file) {
  return Hdf5Source{file, "/train/images", "/train/labels", "data.train_images", "data.train_labels"};
}

// A scratch folder with one file written by write_hdf5_splits from NamedSet.
struct WrittenFile {
  testing::ScratchDir dir;
  std::string path = dir.file("named.h5");
  WrittenFile() {
    const NamedSet named;
    write_hdf5_splits(path, named, named, Hdf5WriteOptions{});
  }
};

// Runs `action` with the file's root attribute `name` open.
template <typename Action>
void with_root_attribute(const std::string& path, const char* name, Action action) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  ASSERT_GE(attr, 0) << name;
  action(file, attr);
  H5Aclose(attr);
  H5Fclose(file);
}

TEST(Hdf5Strings, WriterStoresFixedLengthStringsInTheChecksummedFormat) {
  const WrittenFile written;
  for (const char* name : {"class_names", "source"}) {
    with_root_attribute(written.path, name, [&](hid_t, hid_t attr) {
      const hid_t type = H5Aget_type(attr);
      EXPECT_EQ(H5Tget_class(type), H5T_STRING) << name;
      EXPECT_EQ(H5Tis_variable_str(type), 0) << name;
      EXPECT_FALSE(hdf5_has_variable_length(type)) << name;
      H5Tclose(type);
    });
  }
  with_root_attribute(written.path, "dptrain_data_format", [&](hid_t file, hid_t attr) {
    int64_t format = 0;
    ASSERT_GE(H5Aread(attr, H5T_NATIVE_INT64, &format), 0);
    EXPECT_EQ(format, kHdf5DataFormat);
    // Superblock version 3 (HDF5 1.10 format): checksummed, as are the version-2 object headers under it.
    H5F_info2_t info;
    ASSERT_GE(H5Fget_info2(file, &info), 0);
    EXPECT_GE(info.super.version, 2u);
    H5O_info_t object;
    ASSERT_GE(H5Oget_info_by_name2(file, "/train/images", &object, H5O_INFO_HDR, H5P_DEFAULT), 0);
    EXPECT_EQ(object.hdr.version, 2u);
  });
  const Hdf5Dataset read(train_source(written.path), {0.f}, {1.f}, 0, 8);
  EXPECT_EQ(read.class_names(), (std::vector<std::string>{"cat", "a longer name ✓"}));
}

TEST(Hdf5Strings, VariableLengthClassNamesAreNotReadAndTheDataStillIs) {
  const WrittenFile written;
  // Replace class_names as dptrain_data_format 1 and h5py write it: variable-length strings.
  const hid_t file = H5Fopen(written.path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  ASSERT_GE(H5Adelete(file, "class_names"), 0);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const hsize_t two = 2;
  const hid_t space = H5Screate_simple(1, &two, nullptr);
  const hid_t attr = H5Acreate2(file, "class_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* names[] = {"cat", "dog"};
  ASSERT_GE(H5Awrite(attr, type, names), 0);
  EXPECT_TRUE(hdf5_has_variable_length(type));
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  ASSERT_GE(H5Fclose(file), 0);

  const Hdf5Dataset read(train_source(written.path), {0.f}, {1.f}, 0, 8);
  EXPECT_TRUE(read.class_names().empty());
  EXPECT_EQ(read.size(), 3u);
  EXPECT_EQ(read.num_classes(), 2u);
  EXPECT_THAT(read.describe(), HasSubstr("class names not read: stored as variable-length strings"));
}

TEST(Hdf5Strings, VariableLengthTypesAreFoundInsideCompoundAndArrayTypes) {
  const hid_t text = H5Tcopy(H5T_C_S1);
  H5Tset_size(text, H5T_VARIABLE);
  const hid_t fixed = H5Tcopy(H5T_C_S1);
  H5Tset_size(fixed, 8);
  const hid_t pair = H5Tcreate(H5T_COMPOUND, sizeof(int) + sizeof(char*));
  H5Tinsert(pair, "n", 0, H5T_NATIVE_INT);
  H5Tinsert(pair, "s", sizeof(int), text);
  const hsize_t three = 3;
  const hid_t list = H5Tarray_create2(pair, 1, &three);
  const hid_t sequence = H5Tvlen_create(H5T_NATIVE_FLOAT);
  EXPECT_TRUE(hdf5_has_variable_length(text));
  EXPECT_TRUE(hdf5_has_variable_length(pair));
  EXPECT_TRUE(hdf5_has_variable_length(list));
  EXPECT_TRUE(hdf5_has_variable_length(sequence));
  EXPECT_FALSE(hdf5_has_variable_length(fixed));
  EXPECT_FALSE(hdf5_has_variable_length(H5T_NATIVE_FLOAT));
  for (hid_t t : {text, fixed, pair, list, sequence}) H5Tclose(t);
}

// The damaged file fuzzing found (tests/fuzz/corpus/hdf5_dataset/): reading its variable-length
// class_names looped forever inside HDF5's global heap. Opened in a child process, so that a hang
// fails this test at its deadline instead of stopping the test run.
TEST(Hdf5Strings, DamagedClassNamesHeapNoLongerHangsTheReader) {
  const std::string file = std::string(DPTRAIN_SOURCE_DIR) + "/tests/fuzz/corpus/hdf5_dataset/broken-class-names-heap.h5";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int status = 2;
    try {
      const Hdf5Dataset read(train_source(file), {0.f}, {1.f}, 0, 8);
      status = read.class_names().empty() ? 0 : 3;
    } catch (const DataError&) {
      status = 1;
    } catch (...) {
      status = 4;
    }
    ::_exit(status);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << file << " did not open or fail within 20 s: the reader hangs";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "the reader died of signal " << WTERMSIG(status);
  // 0: opened without its class names (variable-length, not read); 1: refused as damaged.
  EXPECT_THAT(WEXITSTATUS(status), ::testing::AnyOf(0, 1));
}

}  // namespace
}  // namespace dptrain
