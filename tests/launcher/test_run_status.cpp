// RunStatus: the one serializer and parser of the status file between `dptrain train` and `dptrain launch`.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "launcher/supervisor/run_status.h"
#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "tests/test_util.h"

namespace dptrain::launcher {
namespace DPTRAIN_TEST_UNIT {

TEST(RunStatus, EveryOutcomeSurvivesItsLine) {
  const RunStatus statuses[] = {
      RunStatus::completed(),
      RunStatus::stopped(SIGTERM, ""),
      RunStatus::stopped(SIGINT, ""),
      RunStatus::stopped(SIGUSR2, ""),
      RunStatus::stopped(SIGHUP, ""),
      RunStatus::stopped(0, "too few workers (1 of elastic.min_workers 2)"),
      RunStatus::from_error(ConfigError("run.yaml:3: bad key"), "run.yaml:3: bad key"),
      RunStatus::from_error(std::runtime_error("disk full"), "internal error: disk full"),
  };
  for (const RunStatus& status : statuses) {
    const std::string line = to_string(status);
    const std::optional<RunStatus> parsed = parse_run_status(line);
    ASSERT_TRUE(parsed.has_value()) << line;
    EXPECT_EQ(parsed->outcome, status.outcome) << line;
    EXPECT_EQ(parsed->signal, status.signal) << line;
    EXPECT_EQ(parsed->detail, status.detail) << line;
  }
}

TEST(RunStatus, LinesAreTheOnesTheSupervisorAndUsersRead) {
  EXPECT_EQ(to_string(RunStatus::completed()), "completed");
  EXPECT_EQ(to_string(RunStatus::stopped(SIGTERM, "")), "stopped SIGTERM");
  EXPECT_EQ(to_string(RunStatus::stopped(SIGHUP, "")), "stopped by signal " + std::to_string(SIGHUP));
  EXPECT_EQ(to_string(RunStatus::stopped(0, "")), "stopped: asked to stop");
  EXPECT_EQ(to_string(RunStatus::from_error(UsageError("x"), "line one\nline two")), "refused: line one");
  EXPECT_EQ(to_string(RunStatus::from_error(CommError("peer gone"), "peer gone")), "failed: peer gone");
}

TEST(RunStatus, MistakesARelaunchWouldRepeatAreRefusedOthersFailed) {
  EXPECT_EQ(RunStatus::from_error(ConfigError("c"), "c").outcome, JobOutcome::Refused);
  EXPECT_EQ(RunStatus::from_error(UsageError("u"), "u").outcome, JobOutcome::Refused);
  EXPECT_EQ(RunStatus::from_error(ShapeError("s"), "s").outcome, JobOutcome::Refused);
  EXPECT_EQ(RunStatus::from_error(CommError("m"), "m").outcome, JobOutcome::Failed);
  EXPECT_EQ(RunStatus::from_error(std::bad_alloc(), "out of memory").outcome, JobOutcome::Failed);
  EXPECT_TRUE(RunStatus::completed().finished());
  EXPECT_TRUE(RunStatus::stopped(SIGTERM, "").finished());
  EXPECT_FALSE(RunStatus::from_error(UsageError("u"), "u").finished());
}

TEST(RunStatus, AnythingElseIsNoStatus) {
  for (const char* line :
       {"", "complete", "stopped", "stopped by signal x", "stopped by signal 0", "Completed", "refused", "failed:"}) {
    EXPECT_FALSE(parse_run_status(line).has_value()) << line;
  }
}

TEST(RunStatus, WrittenAtomicallyAndReadBack) {
  test_util::TempDir dir;
  const std::string path = dir.file("launch-status");
  EXPECT_FALSE(read_run_status(path).has_value());
  write_run_status(path, RunStatus::stopped(SIGUSR2, ""));
  const std::optional<RunStatus> read = read_run_status(path);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->outcome, JobOutcome::Stopped);
  EXPECT_EQ(read->signal, SIGUSR2);
  EXPECT_EQ(test_util::read_file(path), "stopped SIGUSR2\n");
  record_train_error(path, 1, ConfigError("c"), "c");  // not rank 0: nothing written
  EXPECT_EQ(read_run_status(path)->outcome, JobOutcome::Stopped);
  record_train_error(path, 0, ConfigError("c"), "bad config");
  EXPECT_EQ(test_util::read_file(path), "refused: bad config\n");
  std::ofstream(path) << "something else\n";
  EXPECT_FALSE(read_run_status(path).has_value());
}

TEST(RunStatus, OwnerOnlyAndNeverWrittenThroughAPlantedSymlink) {
  test_util::TempDir dir;
  const std::string path = dir.file("launch-status");
  std::ofstream(dir.file("victim")) << "precious\n";
  std::filesystem::create_symlink(dir.file("victim"), path);
  std::filesystem::create_symlink(dir.file("victim"), path + ".tmp." + std::to_string(::getpid()));
  EXPECT_FALSE(read_run_status(path).has_value());  // a symlink is not read either
  write_run_status(path, RunStatus::completed());
  EXPECT_EQ(test_util::read_file(dir.file("victim")), "precious\n");
  EXPECT_EQ(test_util::read_file(path), "completed\n");
  EXPECT_EQ(path_mode(path).value_or(0), 0600u);
}

}  // namespace
}  // namespace dptrain::launcher
