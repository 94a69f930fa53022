// Checkpoint files and folders are owner-only and never written through a planted symlink.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/private_files.h"
#include "tests/runtime/checkpoint/checkpoint_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

using test_util::TempDir;
using namespace checkpoint_test;

class CheckpointModes : public ::testing::TestWithParam<mode_t> {};

TEST_P(CheckpointModes, TheFolderIsOwnerOnlyAndTheFile0600WhateverTheUmask) {
  TempDir tmp;
  const mode_t old = ::umask(GetParam());
  const std::string dir = tmp.file("runs/a/ckpt");
  const std::string path = save_checkpoint(dir, sample_state(1, 10));
  ::umask(old);
  EXPECT_EQ(path_mode(tmp.file("runs")).value_or(0), 0700u);
  EXPECT_EQ(path_mode(dir).value_or(0), 0700u);
  EXPECT_EQ(path_mode(path).value_or(0), 0600u);
  EXPECT_EQ(read_checkpoint(path).global_step, 10u);
}

INSTANTIATE_TEST_SUITE_P(Umask, CheckpointModes, ::testing::Values(mode_t{0}, mode_t{022}));

TEST(CheckpointSymlinks, ASymlinkAtTheOldTemporaryNameIsNotFollowed) {
  TempDir tmp;
  const std::string victim = tmp.file("victim");
  write_bytes(victim, "precious");
  const std::string final_name = checkpoint_file_name(1, 10);
  fs::create_symlink(victim, tmp.file("." + final_name + ".tmp-" + std::to_string(::getpid())));
  const std::string path = save_checkpoint(tmp.path(), sample_state(1, 10));
  EXPECT_EQ(read_bytes(victim), "precious");
  EXPECT_NO_THROW(verify_checkpoint(path));
}

TEST(CheckpointSymlinks, ASymlinkAtTheFinalNameIsReplacedNotFollowed) {
  TempDir tmp;
  const std::string victim = tmp.file("victim");
  write_bytes(victim, "precious");
  const std::string path = tmp.file(checkpoint_file_name(1, 10));
  fs::create_symlink(victim, path);
  save_checkpoint(tmp.path(), sample_state(1, 10));
  EXPECT_EQ(read_bytes(victim), "precious");
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_NO_THROW(verify_checkpoint(path));
}

TEST(CheckpointSymlinks, NoTemporaryFileIsLeftAndStaleOnesOfTheNewNameArePruned) {
  TempDir tmp;
  const std::string stale = tmp.file(".ckpt-e000001-s00000001.h5.tmp-999999-k3j9x0abc12z");
  write_bytes(stale, "partial");
  const time_t long_ago = std::time(nullptr) - 7200;
  const struct utimbuf times = {long_ago, long_ago};
  ASSERT_EQ(::utime(stale.c_str(), &times), 0);
  save_checkpoint(tmp.path(), sample_state(1, 10));
  EXPECT_EQ(prune_checkpoints(tmp.path(), 1).removed_temp_files, std::vector<std::string>{stale});
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace dptrain
