// The memory budget and the checks made before allocating: planned sizes against the budget, sizes
// that overflow, and config files that are not regular files or are far too large.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/run_config.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::error_of;
using ::testing::HasSubstr;

// A fresh folder under the system temp dir, removed when the test ends.
struct TempFolder {
  TempFolder() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = std::filesystem::temp_directory_path() /
           ("dptrain_budget_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

TEST(MemoryBudget, IsSomethingAndNamesItsSource) {
  const MemoryBudget budget = memory_budget();
  EXPECT_GT(budget.bytes, size_t{1} << 20);
  EXPECT_FALSE(budget.source.empty());
}

TEST(MemoryBudget, AnAllocationBeyondItNamesWhatHowMuchAndTheKey) {
  EXPECT_NO_THROW(reserve(1 << 20, "a small buffer", "train.batch_size"));
  try {
    reserve(size_t{1} << 60, "the loader's two batches of 4096 samples", "train.batch_size");
    ADD_FAILURE() << "no error";
  } catch (const AllocationError& e) {
    EXPECT_EQ(e.key(), "train.batch_size");
    EXPECT_THAT(e.what(), HasSubstr("cannot allocate 1.0 EiB for the loader's two batches of 4096 samples"));
    EXPECT_THAT(e.what(), HasSubstr("lower train.batch_size"));
  }
}

TEST(MemoryBudget, ProductsThatOverflowAreAnAllocationError) {
  EXPECT_EQ(checked_bytes({3, 4, 5}, "x", "data.shape"), 60u);
  EXPECT_EQ(checked_bytes({0, std::numeric_limits<size_t>::max(), 2}, "x", "data.shape"), 0u);
  const std::string msg = error_of<AllocationError>([] {
    checked_bytes({size_t{1} << 40, size_t{1} << 40}, "one image of data.shape", "data.shape");
  });
  EXPECT_THAT(msg, HasSubstr("one image of data.shape: its size overflows"));
}

TEST(MemoryBudget, ByteSizesReadLikeAPerson) {
  EXPECT_EQ(byte_size_text(512), "512 B");
  EXPECT_EQ(byte_size_text(size_t{3} << 19), "1.5 MiB");
  EXPECT_EQ(byte_size_text(size_t{28} << 30), "28.0 GiB");
  EXPECT_EQ(byte_size_text(1023), "1023 B");
  EXPECT_EQ(byte_size_text(1024), "1.0 KiB");
  EXPECT_EQ(byte_size_text(84787), "82.8 KiB");  // a small checkpoint, as its line shows it
  EXPECT_EQ(byte_size_text(size_t{2} << 30), "2.0 GiB");
}

TEST(RegularFile, DirectoriesDevicesAndPipesAreNotFiles) {
  TempFolder dir;
  size_t size = 0;
  std::string why;
  EXPECT_FALSE(regular_file_size(dir.path.string(), &size, &why));
  EXPECT_EQ(why, "is a directory, not a file");
  EXPECT_FALSE(regular_file_size("/dev/zero", &size, &why));
  EXPECT_EQ(why, "is a device, not a regular file");
  const std::string fifo = (dir.path / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(regular_file_size(fifo, &size, &why));
  EXPECT_EQ(why, "is a pipe (FIFO), not a regular file");
  const std::string file = (dir.path / "f").string();
  std::ofstream(file) << "12345";
  EXPECT_TRUE(regular_file_size(file, &size, &why));
  EXPECT_EQ(size, 5u);
}

TEST(RunConfigLoad, ADirectoryADeviceOrAPipeAsTheConfigIsNamedAtOnce) {
  TempFolder dir;
  EXPECT_THAT(error_of<ConfigError>([&] { RunConfig::load(dir.path.string()); }),
              HasSubstr(dir.path.string() + ": the config file is a directory, not a file"));
  EXPECT_THAT(error_of<ConfigError>([] { RunConfig::load("/dev/zero"); }),
              HasSubstr("/dev/zero: the config file is a device, not a regular file"));
  const std::string fifo = (dir.path / "run.yaml").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);  // opening it would wait for a writer forever
  EXPECT_THAT(error_of<ConfigError>([&] { RunConfig::load(fifo); }), HasSubstr(fifo + ": the config file is a pipe"));
  EXPECT_THAT(error_of<ConfigError>([&] { RunConfig::load((dir.path / "missing.yaml").string()); }),
              HasSubstr("cannot open config file"));
}

TEST(RunConfigLoad, AConfigFarLargerThanAnyConfigIsRefusedUnread) {
  TempFolder dir;
  const std::string path = (dir.path / "big.yaml").string();
  {
    std::ofstream out(path);
    out << "# a comment\n";
  }
  std::filesystem::resize_file(path, size_t{17} << 20);  // sparse: nothing is written
  EXPECT_THAT(error_of<ConfigError>([&] { RunConfig::load(path); }),
              HasSubstr(path + ": the config file holds 17.0 MiB, more than the 16.0 MiB a config may have"));
}

}  // namespace
}  // namespace dptrain
