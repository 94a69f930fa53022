// End to end: a bad command line exits 2 with a message a person can read, whichever the subcommand.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using e2e::CommandResult;
using e2e::run_command;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

void expect_bad_command_line(const std::string& args, const std::string& message, const std::string& command) {
  const CommandResult r = run_command(kBinary + " " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
  EXPECT_NE(r.output.find("run '" + command + " --help'"), std::string::npos) << args << "\n" << r.output;
  EXPECT_EQ(r.output.find("e+308"), std::string::npos) << args << "\n" << r.output;
}

TEST(CommandLine, OutOfRangeValuesExit2NamingTheRule) {
  expect_bad_command_line("launch " + kSmoke + " --np 0", "--np: must be at least 1, got 0", "dptrain launch");
  expect_bad_command_line("launch " + kSmoke + " --np 2 --grace -1", "--grace: must be between 0 and 604800, got -1",
                          "dptrain launch");
  expect_bad_command_line("bench train " + kSmoke + " --steps 0", "--steps: must be at least 1, got 0",
                          "dptrain bench train");
  expect_bad_command_line("bench allreduce --bucket-mb 0", "--bucket-mb: must be greater than 0 and at most 4096",
                          "dptrain bench allreduce");
  expect_bad_command_line("join --run-dir /tmp --wait 1e10", "--wait: must be greater than 0 and at most 604800",
                          "dptrain join");
  expect_bad_command_line("ctl leave --run-dir /tmp --rank x", "--rank: expected a number, got 'x'",
                          "dptrain ctl leave");
}

TEST(CommandLine, UnknownAndMissingExit2) {
  expect_bad_command_line("train " + kSmoke + " --no-such-option", "--no-such-option", "dptrain train");
  expect_bad_command_line("train", "config is required", "dptrain train");
  expect_bad_command_line("train " + kSmoke + " --progress fast", "--progress", "dptrain train");
  expect_bad_command_line("frobnicate", "A subcommand is required", "dptrain");
  expect_bad_command_line("", "A subcommand is required", "dptrain");
}

TEST(CommandLine, HelpAndVersionExit0) {
  EXPECT_EQ(run_command(kBinary + " --help").exit_code, 0);
  EXPECT_EQ(run_command(kBinary + " train --help").exit_code, 0);
  EXPECT_EQ(run_command(kBinary + " --version").exit_code, 0);
}

}  // namespace
}  // namespace dptrain
