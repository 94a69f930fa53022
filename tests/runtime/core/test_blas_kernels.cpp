// decide_blas_core: when a run restarts itself with OpenBLAS's AVX-512 kernels, and when it keeps
// OpenBLAS's own choice or the user's; describe_blas_core's line for each.
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/blas_kernels.h"
#include "runtime/core/errors.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuFeatures avx2_cpu() {
  CpuFeatures f;
  f.avx2 = f.fma = true;
  return f;
}

CpuFeatures avx512_cpu() {
  CpuFeatures f = avx2_cpu();
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512cd = true;
  return f;
}

TEST(BlasCoreDecision, AvxFiveTwelveCpuOnHaswellKernelsRestartsWithSkylakeX) {
  const BlasCoreDecision d = decide_blas_core(avx512_cpu(), "Haswell", {});
  EXPECT_EQ(d.action, BlasCoreAction::Restart);
  EXPECT_EQ(d.reason, BlasCoreReason::Upgrade);
  EXPECT_EQ(d.core, "SkylakeX");
  EXPECT_EQ(d.replaced, "Haswell");
  // OpenBLAS's Zen kernels are AVX2 ones too.
  EXPECT_EQ(decide_blas_core(avx512_cpu(), "Zen", {}).action, BlasCoreAction::Restart);
}

TEST(BlasCoreDecision, AvxFiveTwelveKernelsAlreadyChosenAreKept) {
  for (const char* core : {"SkylakeX", "Cooperlake", "SapphireRapids", "skylakex"}) {
    const BlasCoreDecision d = decide_blas_core(avx512_cpu(), core, {});
    EXPECT_EQ(d.action, BlasCoreAction::Keep) << core;
    EXPECT_EQ(d.reason, BlasCoreReason::OpenBlasChoice) << core;
  }
}

TEST(BlasCoreDecision, CpuWithoutTheWholeAvxFiveTwelveSetKeepsOpenBlasChoice) {
  EXPECT_EQ(decide_blas_core(avx2_cpu(), "Haswell", {}).action, BlasCoreAction::Keep);
  EXPECT_EQ(decide_blas_core(CpuFeatures{}, "ARMV8", {}).action, BlasCoreAction::Keep);
  // Each of F, BW, VL, DQ and CD is needed by the SkylakeX kernels.
  for (bool CpuFeatures::*missing : {&CpuFeatures::avx512f, &CpuFeatures::avx512bw, &CpuFeatures::avx512vl,
                                     &CpuFeatures::avx512dq, &CpuFeatures::avx512cd}) {
    CpuFeatures f = avx512_cpu();
    f.*missing = false;
    const BlasCoreDecision d = decide_blas_core(f, "Haswell", {});
    EXPECT_EQ(d.action, BlasCoreAction::Keep);
    EXPECT_EQ(d.reason, BlasCoreReason::OpenBlasChoice);
  }
}

TEST(BlasCoreDecision, UserCoreTypeIsRespected) {
  BlasCoreEnv env;
  env.openblas_coretype = "Haswell";
  const BlasCoreDecision d = decide_blas_core(avx512_cpu(), "Haswell", env);
  EXPECT_EQ(d.action, BlasCoreAction::Keep);
  EXPECT_EQ(d.reason, BlasCoreReason::UserChoice);
  EXPECT_EQ(describe_blas_core("Haswell", d, env), "Haswell (OPENBLAS_CORETYPE=Haswell set in the environment)");
}

TEST(BlasCoreDecision, KeepOptsOutInAnyCase) {
  for (const char* value : {"keep", "KEEP"}) {
    BlasCoreEnv env;
    env.dptrain_coretype = value;
    const BlasCoreDecision d = decide_blas_core(avx512_cpu(), "Haswell", env);
    EXPECT_EQ(d.action, BlasCoreAction::Keep) << value;
    EXPECT_EQ(d.reason, BlasCoreReason::OptedOut) << value;
  }
  BlasCoreEnv automatic;
  automatic.dptrain_coretype = "auto";
  EXPECT_EQ(decide_blas_core(avx512_cpu(), "Haswell", automatic).action, BlasCoreAction::Restart);
}

TEST(BlasCoreDecision, ARestartedProcessNeverRestartsAgain) {
  BlasCoreEnv env;
  env.openblas_coretype = "SkylakeX";
  env.replaced = "Haswell";
  // Even when OpenBLAS ignored the core asked for and still runs Haswell.
  for (const char* running : {"SkylakeX", "Haswell"}) {
    const BlasCoreDecision d = decide_blas_core(avx512_cpu(), running, env);
    EXPECT_EQ(d.action, BlasCoreAction::Keep) << running;
    EXPECT_EQ(d.reason, BlasCoreReason::Replaced) << running;
    EXPECT_EQ(d.replaced, "Haswell");
  }
  // And when something removed OPENBLAS_CORETYPE before a second start.
  env.openblas_coretype.reset();
  EXPECT_EQ(decide_blas_core(avx512_cpu(), "Haswell", env).action, BlasCoreAction::Keep);
}

TEST(BlasCoreDecision, AnUnknownModeIsAUsageErrorNamingTheVariableAndTheChoices) {
  BlasCoreEnv env;
  env.dptrain_coretype = "SkylakeX";
  try {
    decide_blas_core(avx512_cpu(), "Haswell", env);
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("DPTRAIN_BLAS_CORETYPE=SkylakeX"), std::string::npos) << message;
    EXPECT_NE(message.find("auto"), std::string::npos) << message;
    EXPECT_NE(message.find("keep"), std::string::npos) << message;
    EXPECT_NE(message.find("OPENBLAS_CORETYPE"), std::string::npos) << message;
  }
}

TEST(BlasCoreDescription, SaysWhyTheCoreIsInUse) {
  BlasCoreEnv restarted;
  restarted.openblas_coretype = "SkylakeX";
  restarted.replaced = "Haswell";
  const std::string chosen =
      describe_blas_core("SkylakeX", decide_blas_core(avx512_cpu(), "SkylakeX", restarted), restarted);
  EXPECT_EQ(chosen.rfind("SkylakeX (chosen at start-up: OpenBLAS chose Haswell", 0), 0u) << chosen;
  EXPECT_NE(chosen.find("DPTRAIN_BLAS_CORETYPE=keep"), std::string::npos) << chosen;
  EXPECT_EQ(chosen.find("but OpenBLAS runs"), std::string::npos) << chosen;
  // OpenBLAS without the core asked for: the line says what really runs.
  const std::string ignored =
      describe_blas_core("Haswell", decide_blas_core(avx512_cpu(), "Haswell", restarted), restarted);
  EXPECT_NE(ignored.find("OPENBLAS_CORETYPE asks for SkylakeX but OpenBLAS runs Haswell"), std::string::npos)
      << ignored;
  const std::string own = describe_blas_core("Haswell", decide_blas_core(avx2_cpu(), "Haswell", {}), {});
  EXPECT_EQ(own, "Haswell (OpenBLAS's own choice for this CPU)");
  // A process that was not restarted (a library user, or a failed restart) says how to get the kernels.
  const std::string upgrade = describe_blas_core("Haswell", decide_blas_core(avx512_cpu(), "Haswell", {}), {});
  EXPECT_NE(upgrade.find("start with OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << upgrade;
}

TEST(BlasCoreDescription, ReasonTokensForJson) {
  EXPECT_STREQ(to_string(BlasCoreReason::UserChoice), "user");
  EXPECT_STREQ(to_string(BlasCoreReason::OptedOut), "keep");
  EXPECT_STREQ(to_string(BlasCoreReason::OpenBlasChoice), "openblas");
  EXPECT_STREQ(to_string(BlasCoreReason::Replaced), "dptrain");
}

TEST(BlasCoreDetection, ThisProcessHasACoreName) {
  EXPECT_FALSE(openblas_core_name().empty());
  const CpuFeatures f = detect_cpu_features();
  // AVX-512 F implies AVX2 on every CPU that has it.
  if (f.avx512f) EXPECT_TRUE(f.avx2);
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
