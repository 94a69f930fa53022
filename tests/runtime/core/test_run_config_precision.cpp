// The `precision` key: float32 by default, tf32 accepted everywhere (no effect on the CPU), bf16
// only on the GPU, with an error that names the key and the fix.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/runtime/core/run_config_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kCpuConfig = "device: cpu\n" + run_config_test::kMinimalConfig;

std::string config_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    RunConfig::parse(yaml, "demo.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

TEST(RunConfigPrecision, DefaultsToFloat32) {
  EXPECT_EQ(RunConfig::parse(kCpuConfig, "demo.yaml").precision, Precision::Float32);
}

TEST(RunConfigPrecision, ReadsEverySpelling) {
  for (Precision p : {Precision::Float32, Precision::Tf32}) {
    const RunConfig cfg = RunConfig::parse(kCpuConfig, "demo.yaml", {std::string("precision=") + to_string(p)});
    EXPECT_EQ(cfg.precision, p) << to_string(p);
  }
  const RunConfig gpu =
      RunConfig::parse(kCpuConfig + "precision: bf16\n", "demo.yaml", {"device=cuda"});
  EXPECT_EQ(gpu.precision, Precision::Bf16);
  EXPECT_EQ(gpu.device, DeviceKind::CUDA);
}

TEST(RunConfigPrecision, UnknownValueListsTheChoices) {
  const std::string msg = config_error(kCpuConfig + "precision: fp16\n");
  EXPECT_NE(msg.find("precision"), std::string::npos) << msg;
  EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
}

TEST(RunConfigPrecision, Bf16OnTheCpuNamesTheKeyAndTheFix) {
  const std::string msg = config_error(kCpuConfig + "precision: bf16\n");
  const auto line = std::count(kCpuConfig.begin(), kCpuConfig.end(), '\n') + 1;  // the appended one
  EXPECT_NE(msg.find("demo.yaml:" + std::to_string(line) + ":"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'precision'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GPU only"), std::string::npos) << msg;
  EXPECT_NE(msg.find("precision: float32"), std::string::npos) << msg;
  const std::string by_flag = config_error(kCpuConfig, {"precision=bf16"});
  EXPECT_NE(by_flag.find("--set precision"), std::string::npos) << by_flag;
}

TEST(RunConfigPrecision, PrecisionNamesRoundTrip) {
  for (Precision p : {Precision::Float32, Precision::Tf32, Precision::Bf16}) {
    EXPECT_EQ(parse_precision(to_string(p)), p);
  }
  EXPECT_THROW(parse_precision("half"), UsageError);
}

TEST(ContextPrecision, Tf32OnTheCpuIsAcceptedAndComputesFloat32) {
  Context context(DeviceKind::CPU, 1, 1, std::nullopt, Precision::Tf32);
  EXPECT_EQ(context.precision(), Precision::Float32);
  EXPECT_NE(context.describe_precision().find("tf32 has no effect on the cpu"), std::string::npos)
      << context.describe_precision();
  EXPECT_EQ(Context(DeviceKind::CPU, 1).describe_precision(), "float32");
}

TEST(ContextPrecision, Bf16OnTheCpuIsAUsageError) {
  try {
    Context context(DeviceKind::CPU, 1, 1, std::nullopt, Precision::Bf16);
    FAIL() << "Context(cpu) accepted precision bf16";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("precision: float32"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dptrain
