// The `cudnn_deterministic` key: off by default, true asks for deterministic GPU algorithms only,
// anything but a boolean is an error naming the file, line and key; the CPU accepts it unchanged.
// The `cpu_convolution` key: auto by default, one of three choices, and it reaches the CPU backend.
// The `train.reproducible` key: auto by default, or a boolean; anything else names the key.
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/context.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/runtime/core/run_config_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kCpuConfig = "device: cpu\n" + run_config_test::kMinimalConfig;

TEST(RunConfigDeterminism, DefaultsToTheFastestAlgorithms) {
  EXPECT_EQ(RunConfig::parse(kCpuConfig, "demo.yaml").determinism, Determinism::Fastest);
  EXPECT_EQ(RunConfig::parse(kCpuConfig + "cudnn_deterministic: false\n", "demo.yaml").determinism,
            Determinism::Fastest);
}

TEST(RunConfigDeterminism, TrueAsksForDeterministicAlgorithms) {
  EXPECT_EQ(RunConfig::parse(kCpuConfig + "cudnn_deterministic: true\n", "demo.yaml").determinism,
            Determinism::Required);
  EXPECT_EQ(RunConfig::parse(kCpuConfig, "demo.yaml", {"cudnn_deterministic=true"}).determinism, Determinism::Required);
}

TEST(RunConfigDeterminism, ANonBooleanNamesTheFileLineAndKey) {
  try {
    RunConfig::parse(kCpuConfig + "cudnn_deterministic: always\n", "demo.yaml");
    FAIL() << "cudnn_deterministic: always was accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("demo.yaml:15"), std::string::npos) << msg;  // the line it is on
    EXPECT_NE(msg.find("cudnn_deterministic"), std::string::npos) << msg;
  }
}

TEST(RunConfigDeterminism, TheCpuAcceptsItAndIsDeterministicAnyway) {
  Context context(DeviceKind::CPU, 1, 1, 0, Precision::Float32, Determinism::Required);
  EXPECT_EQ(context.describe_device(), "cpu");
  EXPECT_STREQ(to_string(Determinism::Required), "deterministic");
  EXPECT_STREQ(to_string(Determinism::Fastest), "fastest");
}

TEST(RunConfigCpuConvolution, DefaultsToAutoAndReachesTheCpuBackend) {
  EXPECT_EQ(RunConfig::parse(kCpuConfig, "demo.yaml").cpu_convolution, CpuConvolution::Auto);
  for (CpuConvolution c : {CpuConvolution::Auto, CpuConvolution::OneDnn, CpuConvolution::Im2col}) {
    const RunConfig config =
        RunConfig::parse(kCpuConfig, "demo.yaml", {std::string("cpu_convolution=") + to_string(c)});
    EXPECT_EQ(config.cpu_convolution, c) << to_string(c);
    Context context(DeviceKind::CPU, 1, 1, 0, Precision::Float32, Determinism::Fastest, config.cpu_convolution);
    auto* cpu = dynamic_cast<CpuBackend*>(&context.backend());
    ASSERT_NE(cpu, nullptr);
    EXPECT_EQ(cpu->convolution(), c) << to_string(c);
  }
}

TEST(RunConfigCpuConvolution, AnUnknownChoiceNamesTheKeyAndTheChoices) {
  try {
    RunConfig::parse(kCpuConfig + "cpu_convolution: fast\n", "demo.yaml");
    FAIL() << "cpu_convolution: fast was accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("demo.yaml:15"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cpu_convolution"), std::string::npos) << msg;
    EXPECT_NE(msg.find("im2col"), std::string::npos) << msg;  // the choices are listed
  }
}

TEST(RunConfigReproducible, DefaultsToAutoAndTakesTrueFalseInYamlsSpellings) {
  EXPECT_EQ(RunConfig::parse(kCpuConfig, "demo.yaml").train.reproducible, Reproducibility::Auto);
  auto with = [](const std::string& value) {
    return RunConfig::parse(kCpuConfig, "demo.yaml", {"train.reproducible=" + value}).train.reproducible;
  };
  EXPECT_EQ(with("auto"), Reproducibility::Auto);
  EXPECT_EQ(with("true"), Reproducibility::BitExact);
  EXPECT_EQ(with("yes"), Reproducibility::BitExact);
  EXPECT_EQ(with("false"), Reproducibility::Approximate);
  EXPECT_EQ(with("off"), Reproducibility::Approximate);
}

TEST(RunConfigReproducible, AnythingElseNamesTheKeyAndTheChoices) {
  try {
    RunConfig::parse(kCpuConfig, "demo.yaml", {"train.reproducible=sometimes"});
    FAIL() << "train.reproducible: sometimes was accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("reproducible"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected auto, true or false, got 'sometimes'"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace dptrain
