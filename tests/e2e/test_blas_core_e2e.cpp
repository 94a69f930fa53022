// End to end: the dptrain binary picks OpenBLAS's kernels for the CPU it runs on at start-up (restarting
// itself with OPENBLAS_CORETYPE where OpenBLAS chose kernels without AVX-512 on an AVX-512 CPU), respects
// the user's OPENBLAS_CORETYPE and DPTRAIN_BLAS_CORETYPE=keep, and says which core it runs and why.
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/blas_kernels.h"
#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using e2e::CommandResult;
using e2e::run_command;
using testing::JsonValue;
using testing::parse_json;

// The binary with none of the variables the choice reads (the test's own environment may set them),
// unless a test adds them after this prefix.
const std::string kCleanEnv =
    std::string("env -u OPENBLAS_CORETYPE -u DPTRAIN_BLAS_CORETYPE -u DPTRAIN_FAULT -u ") + kBlasCoreReplacedVar + " ";
const std::string kPeakJson = std::string(DPTRAIN_BINARY) + " bench peak --size 64 --repeats 1 --threads 1 --json";
const std::string kCoreSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

JsonValue json_line(const std::string& output) {
  const size_t start = output.find('{');
  return parse_json(output.substr(start, output.find('\n', start) - start));
}

// The core OpenBLAS itself chooses on this machine, as the binary reports it with the choice turned off.
std::string openblas_own_core() {
  const CommandResult r = run_command("timeout 60 " + kCleanEnv + "DPTRAIN_BLAS_CORETYPE=keep " + kPeakJson);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const JsonValue line = json_line(r.output);
  EXPECT_EQ(line["blas_core_reason"].string, "keep") << r.output;
  return line["blas_core"].string;
}

TEST(BlasCoreE2e, ReportsTheCoreThisCpuGets) {
  const std::string own = openblas_own_core();
  ASSERT_FALSE(own.empty());
  const BlasCoreDecision expected = decide_blas_core(detect_cpu_features(), own, {});
  const CommandResult r = run_command("timeout 60 " + kCleanEnv + kPeakJson);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JsonValue line = json_line(r.output);
  if (expected.action == BlasCoreAction::Restart) {
    EXPECT_EQ(line["blas_core"].string, expected.core) << r.output;
    EXPECT_EQ(line["blas_core_reason"].string, "dptrain") << r.output;
  } else {
    EXPECT_EQ(line["blas_core"].string, own) << r.output;
    EXPECT_EQ(line["blas_core_reason"].string, "openblas") << r.output;
  }
}

TEST(BlasCoreE2e, TheUsersCoreTypeIsRespected) {
  const CommandResult r = run_command("timeout 60 " + kCleanEnv + "OPENBLAS_CORETYPE=Haswell " + kPeakJson);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JsonValue line = json_line(r.output);
  EXPECT_EQ(line["blas_core_reason"].string, "user") << r.output;
  EXPECT_EQ(line["blas_core"].string, "Haswell") << r.output;
}

TEST(BlasCoreE2e, AnUnknownModeStopsWithTheVariableNamed) {
  const CommandResult r = run_command("timeout 60 " + kCleanEnv + "DPTRAIN_BLAS_CORETYPE=fast " + kPeakJson);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("DPTRAIN_BLAS_CORETYPE=fast: expected auto"), std::string::npos) << r.output;
}

TEST(BlasCoreE2e, TrainUnderMpirunPrintsTheCoreOnce) {
  const CommandResult r =
      run_command(test_util::kMpirun + "-np 2 " + kCleanEnv + DPTRAIN_BINARY + " train " + kCoreSmoke + " --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t at = r.output.find("OpenBLAS core: ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(at, r.output.rfind("OpenBLAS core: ")) << "rank 0 only:\n" << r.output;
  EXPECT_EQ(r.output.find("could not restart"), std::string::npos) << r.output;
}

TEST(BlasCoreE2e, BenchTrainAndLayersNameTheCore) {
  const CommandResult train =
      run_command("timeout 120 " + kCleanEnv + "OPENBLAS_CORETYPE=Haswell " + DPTRAIN_BINARY + " bench train " +
                  kCoreSmoke + " --steps 2 --repeats 1 --warmup 0 --peak-size 0 --set threads=1");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("OpenBLAS core: Haswell (OPENBLAS_CORETYPE=Haswell set in the environment)\n"),
            std::string::npos)
      << train.output;
  const CommandResult json =
      run_command("timeout 120 " + kCleanEnv + "DPTRAIN_BLAS_CORETYPE=keep " + DPTRAIN_BINARY + " bench train " +
                  kCoreSmoke + " --json --steps 2 --repeats 1 --warmup 0 --peak-size 0 --set threads=1");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_EQ(json_line(json.output)["blas_core_reason"].string, "keep") << json.output;
  const CommandResult layers = run_command("timeout 120 " + kCleanEnv + "OPENBLAS_CORETYPE=Haswell " + DPTRAIN_BINARY +
                                           " bench layers " + kCoreSmoke + " --iterations 1 --set threads=1");
  ASSERT_EQ(layers.exit_code, 0) << layers.output;
  EXPECT_NE(layers.output.find("OpenBLAS core: Haswell ("), std::string::npos) << layers.output;
}

// The restart itself, on a machine whose OpenBLAS already chooses well: a test hook makes the binary
// decide as if OpenBLAS had chosen Haswell.
bool restart_path_testable(std::string* why) {
#ifndef DPTRAIN_FAULT_INJECTION
  *why = "dptrain was built without -DDPTRAIN_FAULT_INJECTION=ON: no hook to take the restart path";
  return false;
#else
  if (!detect_cpu_features().skylakex_set()) {
    *why = "this CPU has no AVX-512 (F, BW, VL, DQ, CD): OpenBLAS's choice is always kept";
    return false;
  }
  return true;
#endif
}

TEST(BlasCoreE2e, RestartsWithAvx512KernelsUnderMpirunOnce) {
  std::string why;
  if (!restart_path_testable(&why)) GTEST_SKIP() << why;
  const std::string hooked = kCleanEnv + "DPTRAIN_FAULT=blas_core_haswell ";
  const CommandResult peak = run_command("timeout 60 " + hooked + kPeakJson);
  ASSERT_EQ(peak.exit_code, 0) << peak.output;
  const JsonValue line = json_line(peak.output);
  EXPECT_EQ(line["blas_core"].string, "SkylakeX") << peak.output;
  EXPECT_EQ(line["blas_core_reason"].string, "dptrain") << peak.output;
  // Every rank restarts itself before MPI_Init; the job runs as usual.
  const CommandResult train =
      run_command(test_util::kMpirun + "-np 2 " + hooked + DPTRAIN_BINARY + " train " + kCoreSmoke + " --dry-run");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("OpenBLAS core: SkylakeX (chosen at start-up: OpenBLAS chose Haswell, without AVX-512"),
            std::string::npos)
      << train.output;
  EXPECT_NE(train.output.find("config OK"), std::string::npos) << train.output;
}

TEST(BlasCoreE2e, AFailedRestartRunsOnWithOneNote) {
  std::string why;
  if (!restart_path_testable(&why)) GTEST_SKIP() << why;
  const CommandResult r = run_command("timeout 60 " + kCleanEnv + "DPTRAIN_FAULT=blas_restart_fails " + kPeakJson);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string note = "dptrain: note: could not restart with OPENBLAS_CORETYPE=SkylakeX (execv ";
  ASSERT_NE(r.output.find(note), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(note), r.output.rfind(note)) << r.output;
  const JsonValue line = json_line(r.output);
  EXPECT_EQ(line["blas_core"].string, openblas_own_core()) << r.output;
  EXPECT_GT(line["gflops"].number, 0) << r.output;
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
