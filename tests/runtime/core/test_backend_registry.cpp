// The backend registry: the backends of this build, and what opening one for a worker asks.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/core/backend_registry.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

bool built(const std::string& name) {
  const std::vector<std::string> names = built_backends();
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(BackendRegistry, TheCpuBackendIsAlwaysThere) {
  const std::vector<std::string> names = built_backends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "cpu");
  EXPECT_EQ(visible_device_count(DeviceKind::CPU), 1u);
  auto cpu = open_backend(DeviceKind::CPU, BackendRequest{});
  EXPECT_STREQ(cpu->name(), "cpu");
  EXPECT_EQ(cpu->device(), DeviceKind::CPU);
  EXPECT_EQ(cpu->describe(), "cpu");
}

TEST(BackendRegistry, Bf16IsNotACpuPrecision) {
  BackendRequest request;
  request.precision = Precision::Bf16;
  try {
    open_backend(DeviceKind::CPU, request);
    FAIL() << "the cpu backend opened in bf16";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("set precision: float32"), std::string::npos) << e.what();
  }
}

TEST(BackendRegistry, ABackendTheBuildLacksIsAUsageErrorSayingSo) {
  if (built("cuda")) GTEST_SKIP() << "this build has the cuda backend";
  std::string why;
  EXPECT_EQ(visible_gpu_count(&why), 0u);
  EXPECT_EQ(why, "this build has only the cpu backend");
  EXPECT_EQ(resolve_device("auto"), DeviceKind::CPU);
  try {
    Context context(DeviceKind::CUDA, 1);
    FAIL() << "a cpu-only build opened the cuda backend";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("device 'cuda' is not available: this build has only the cpu backend"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("-DDPTRAIN_CUDA=ON"), std::string::npos) << msg;
  }
}

TEST(BackendRegistry, TheContextHandsOutTheBackendItOpened) {
  Context context(DeviceKind::CPU, 1);
  EXPECT_EQ(&context.backend(), &context.backend());
  EXPECT_STREQ(context.backend().name(), "cpu");
  EXPECT_EQ(context.device(), DeviceKind::CPU);
  EXPECT_EQ(context.describe_device(), "cpu");
}

}  // namespace
}  // namespace dptrain
