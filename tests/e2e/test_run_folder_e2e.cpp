// The run folder through the binary: one that other users can write is refused before anything is trained.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "runtime/core/private_files.h"
#include "tests/e2e/run_command.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

TEST(RunFolderCommand, TrainRefusesAFolderOthersCanWriteAndCreatesAMissingOneOwnerOnly) {
  test_util::TempDir tmp;
  const std::string open_folder = tmp.file("shared");
  fs::create_directory(open_folder);
  ASSERT_EQ(::chmod(open_folder.c_str(), 0777), 0);
  const std::string train = std::string(DPTRAIN_BINARY) + " train " + kSmoke + " --set train.epochs=1 --set threads=1";
  e2e::CommandResult r = e2e::run_command(train + " --set checkpoint.dir=" + open_folder);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("checkpoint.dir " + open_folder), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("chmod go-w " + open_folder), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_empty(open_folder));

  const std::string fresh = tmp.file("runs/fresh");
  r = e2e::run_command("umask 0; " + train + " --set checkpoint.dir=" + fresh);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(path_mode(tmp.file("runs")).value_or(0), 0700u);
  EXPECT_EQ(path_mode(fresh).value_or(0), 0700u);
  size_t checkpoints = 0;
  for (const auto& entry : fs::directory_iterator(fresh)) {
    ++checkpoints;
    EXPECT_EQ(path_mode(entry.path().string()).value_or(0), 0600u) << entry.path();
  }
  EXPECT_GT(checkpoints, 0u);
}

}  // namespace
}  // namespace dptrain
