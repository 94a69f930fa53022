// The `device` key: `auto` (the default, and every shipped config's choice) resolves to cuda where a
// GPU is visible and to cpu elsewhere, and the run's start-up lines say which device and why.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/backend_registry.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/runtime/core/run_config_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(fs::path(DPTRAIN_SOURCE_DIR) / "configs")) {
    if (entry.path().extension() == ".yaml") paths.push_back(entry.path());
  }
  return paths;
}

TEST(RunConfigDevice, EveryShippedConfigSaysAuto) {
  const std::vector<fs::path> configs = shipped_configs();
  ASSERT_GE(configs.size(), 5u) << "configs/ looks empty";
  for (const fs::path& path : configs) {
    const YAML::Node root = YAML::LoadFile(path.string());
    ASSERT_TRUE(root["device"]) << path << " does not set device (say device: auto, so readers see the choice)";
    EXPECT_EQ(root["device"].as<std::string>(), "auto") << path;
  }
}

TEST(RunConfigDevice, AutoResolvesToWhatThisMachineHasAndSaysWhy) {
  std::string why;
  const size_t gpus = visible_gpu_count(&why);
  const RunConfig cfg = RunConfig::load(DPTRAIN_SOURCE_DIR "/configs/fashion_mnist.yaml");
  if (gpus == 0) {
    EXPECT_EQ(cfg.device, DeviceKind::CPU);
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(cfg.device_reason, "auto: no GPU visible: " + why);
    EXPECT_EQ(describe_device(cfg, "cpu"), "cpu (auto: no GPU visible: " + why + ")");
  } else {
    EXPECT_EQ(cfg.device, DeviceKind::CUDA);
    EXPECT_EQ(cfg.device_reason, "auto: " + std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs") + " visible");
  }
}

TEST(RunConfigDevice, TheDefaultIsAuto) {
  const RunConfig by_default = RunConfig::parse(run_config_test::kMinimalConfig, "demo.yaml");
  const RunConfig automatic = RunConfig::parse("device: auto\n" + run_config_test::kMinimalConfig, "demo.yaml");
  EXPECT_EQ(by_default.device, automatic.device);
  EXPECT_EQ(by_default.device_reason, automatic.device_reason);
  EXPECT_EQ(by_default.device_reason.rfind("auto: ", 0), 0u) << by_default.device_reason;
}

TEST(RunConfigDevice, AnExplicitDeviceSaysWhereItWasSet) {
  const RunConfig in_file = RunConfig::parse("device: cpu\n" + run_config_test::kMinimalConfig, "demo.yaml");
  EXPECT_EQ(in_file.device, DeviceKind::CPU);
  EXPECT_EQ(in_file.device_reason, "device: cpu from the config");
  const RunConfig on_command_line = RunConfig::parse(run_config_test::kMinimalConfig, "demo.yaml", {"device=cpu"});
  EXPECT_EQ(on_command_line.device_reason, "device: cpu from --set");
  const RunConfig cuda = RunConfig::parse(run_config_test::kMinimalConfig, "demo.yaml", {"device=cuda"});
  EXPECT_EQ(cuda.device, DeviceKind::CUDA);
  EXPECT_EQ(cuda.device_reason, "device: cuda from --set");
}

TEST(RunConfigDevice, TheStartUpLineNamesTheOpenedDevice) {
  RunConfig cfg;
  cfg.device = DeviceKind::CUDA;
  cfg.device_reason = "auto: 1 GPU visible";
  EXPECT_EQ(describe_device(cfg, "NVIDIA H200 (device 0, sm_90)"),
            "cuda (auto: 1 GPU visible, NVIDIA H200 (device 0, sm_90))");
  cfg.device = DeviceKind::CPU;
  cfg.device_reason = "device: cpu from the config";
  EXPECT_EQ(describe_device(cfg, "cpu"), "cpu (device: cpu from the config)");  // "cpu" is not repeated
}

TEST(RunConfigDevice, Bf16OnAnAutoCpuSaysWhyTheDeviceIsCpu) {
  if (visible_gpu_count() > 0) GTEST_SKIP() << "a GPU is visible: auto resolves to cuda, where bf16 is allowed";
  try {
    RunConfig::parse(run_config_test::kMinimalConfig + "precision: bf16\n", "demo.yaml");
    FAIL() << "bf16 accepted on the cpu";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("this run's device is cpu (auto: no GPU visible: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("set precision: float32"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace dptrain
