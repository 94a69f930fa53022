// Shared code of the GPU tests: one shared CUDA Context, skipping where no GPU is visible, and
// comparing device results with the CPU oracle.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/context.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

namespace dptrain::testing {

// Why the GPU tests cannot run here, or empty when a GPU is visible.
inline std::string no_gpu_reason() {
  std::string why;
  return visible_gpu_count(&why) > 0 ? std::string() : why;
}

// Base of the tests that need a GPU: creates one CUDA Context for all of them, and skips every
// test with "no CUDA device visible: <reason>" where there is none. The context is destroyed by
// GpuContextEnvironment when the tests are done.
class GpuTest : public ::testing::Test {
 public:
  // Destroys the shared context (its streams and cuDNN/cuBLAS handles), if there is one.
  static void release_shared_context() { context().reset(); }
  // The shared context's CUDA backend (only once SetUp did not skip).
  static Backend& gpu() { return context()->backend(); }
  // The CPU backend, the oracle.
  static Backend& cpu() {
    static CpuBackend backend;
    return backend;
  }
  // Labels on the device, as raw int32 bits inside a float tensor of the same byte size.
  static Tensor device_labels(const std::vector<int32_t>& labels) {
    Tensor bits({labels.size()});
    std::memcpy(bits.data(), labels.data(), labels.size() * sizeof(int32_t));
    return bits.to(gpu());
  }

 protected:
  static void SetUpTestSuite() {
    if (!context() && no_gpu_reason().empty()) context() = std::make_unique<Context>(DeviceKind::CUDA, 1, 1, 0);
  }
  void SetUp() override {
    const std::string why = no_gpu_reason();
    if (!why.empty()) GTEST_SKIP() << "no CUDA device visible: " << why;
  }
  static std::unique_ptr<Context>& context() {
    static std::unique_ptr<Context> shared;
    return shared;
  }
};

// Destroys the shared GPU context in gtest's global TearDown, after the last test and while the
// CUDA runtime and the libraries are certainly loaded; at static destruction they may not be.
class GpuContextEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { GpuTest::release_shared_context(); }
};

// Registered once per test program, before main runs the tests.
inline ::testing::Environment* const kGpuContextEnvironment =
    ::testing::AddGlobalTestEnvironment(new GpuContextEnvironment);

// A host tensor of standard normal values drawn from `key`.
inline Tensor random_host(const Shape& shape, uint64_t key) {
  Tensor t(shape);
  Rng rng(hash_key(key, 0x6b0));
  for (size_t i = 0; i < t.num_elements(); ++i) t.data()[i] = rng.normal();
  return t;
}

// random_host values scaled by 2 and offset by 1.5, away from (0, 1), so that normalising them
// (batch norm) does something.
inline Tensor shifted_input(const Shape& shape, uint64_t key) {
  Tensor t = random_host(shape, key);
  for (size_t i = 0; i < t.num_elements(); ++i) t.data()[i] = 1.5f + 2.0f * t.data()[i];
  return t;
}

// Expects the device tensor `actual` to match the host tensor `expected` element-wise within
// |a - e| <= rel_tol * max(scale, |e|), where scale is the largest |e| times 1e-2 (so that
// values near zero are compared against the tensor's magnitude). Names the first mismatches.
inline void expect_close(const Tensor& actual, const Tensor& expected, double rel_tol, const std::string& what) {
  const Tensor got = actual.to_host();
  ASSERT_EQ(got.num_elements(), expected.num_elements()) << what;
  double largest = 0;
  for (size_t i = 0; i < expected.num_elements(); ++i) largest = std::max(largest, std::fabs(double{expected.data()[i]}));
  const double floor = std::max(1e-6, 1e-2 * largest);
  size_t bad = 0;
  for (size_t i = 0; i < expected.num_elements(); ++i) {
    const double e = expected.data()[i], a = got.data()[i];
    if (!(std::fabs(a - e) <= rel_tol * std::max(floor, std::fabs(e))) && bad++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: cuda " << a << ", cpu " << e;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << expected.num_elements() << " elements differ";
}

// The layer configs of a model, each parsed from its YAML flow mapping ("{type: relu}").
inline std::vector<ConfigMap> layer_configs(const std::vector<std::string>& layers) {
  std::vector<ConfigMap> out;
  for (const auto& text : layers) out.push_back(ConfigMap::parse(text));
  return out;
}

}  // namespace dptrain::testing
