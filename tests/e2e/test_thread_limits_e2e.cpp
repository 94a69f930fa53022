// `threads` under a real address-space limit (ulimit -v): the binary refuses, before any thread pool
// starts, a count whose OpenBLAS buffers and stacks do not fit, naming the key and the largest value
// that does, instead of hanging inside OpenBLAS or aborting in libgomp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using ::testing::HasSubstr;

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

// `dptrain train` of the smoke config with `threads` under `ulimit -v kib`, killed after 60 s so that a
// hang fails the test (exit code -1 or 137) instead of stopping the run.
e2e::CommandResult train_under_limit(size_t kib, size_t threads) {
  return e2e::run_command("timeout -s KILL 60 bash -c 'ulimit -v " + std::to_string(kib) + "; exec " +
                          std::string(DPTRAIN_BINARY) + " train " + kSmoke + " --set threads=" +
                          std::to_string(threads) + " --set train.epochs=1'");
}

TEST(ThreadLimitsE2e, ThreadsBeyondUlimitVAreRefusedWithTheLargestCountThatFits) {
  // 4 threads need about 1.1 GiB for their OpenBLAS buffers alone; the binary (MPI, OpenBLAS and, in a
  // CUDA build, the CUDA libraries) maps a few hundred MiB to 1.2 GiB before it checks.
  const e2e::CommandResult r = train_under_limit(1500000, 4);
  ASSERT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("synthetic_smoke.yaml: threads: 4 threads need "));
  EXPECT_THAT(r.output, HasSubstr("is left under ulimit -v"));
  std::smatch largest;
  const std::regex fits("set threads to at most ([0-9]+) \\(--set threads=[0-9]+\\)|not even 1 fits");
  ASSERT_TRUE(std::regex_search(r.output, largest, fits)) << r.output;
  if (largest[1].matched) {
    // The count it names fits and trains: no hang, no abort.
    const size_t most = std::stoul(largest[1].str());
    ASSERT_LT(most, 4u);
    const e2e::CommandResult fitted = train_under_limit(1500000, most);
    EXPECT_EQ(fitted.exit_code, 0) << fitted.output;
  }
}

}  // namespace
}  // namespace dptrain
