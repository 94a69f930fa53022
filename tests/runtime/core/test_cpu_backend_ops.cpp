// The CPU backend's vector operations: axpy, add, copies, scale and the sum of squares, small and
// large enough to run on several threads.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/core/cpu_backend.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(CpuBackendOps, AxpyAddsAScaledVector) {
  CpuBackend cpu;
  for (size_t n : {size_t{5}, size_t{100003}}) {
    std::vector<float> x(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 7);
      y[i] = 1.0f;
    }
    cpu.axpy(0.5f, x.data(), y.data(), n);
    for (size_t i = 0; i < n; i += n / 5 + 1) EXPECT_FLOAT_EQ(y[i], 1.0f + 0.5f * static_cast<float>(i % 7)) << i;
  }
}

TEST(CpuBackendOps, AddWritesTheSumAlsoOverAnInput) {
  CpuBackend cpu;
  for (size_t n : {size_t{5}, size_t{100003}}) {
    std::vector<float> a(n), b(n), y(n, -1.0f);
    for (size_t i = 0; i < n; ++i) {
      a[i] = static_cast<float>(i % 7);
      b[i] = 0.25f * static_cast<float>(i % 5);
    }
    cpu.add(a.data(), b.data(), y.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] + b[i]) << i;
    cpu.add(a.data(), b.data(), b.data(), n);  // y is the second input
    EXPECT_EQ(b, y);
  }
}

TEST(CpuBackendOps, CopiesLargeAndOverlappingBlocks) {
  CpuBackend cpu;
  for (size_t n : {size_t{5}, size_t{100003}}) {
    std::vector<float> src(n), dst(n, -1.0f);
    for (size_t i = 0; i < n; ++i) src[i] = static_cast<float>(i);
    cpu.copy_on_device(dst.data(), src.data(), n * sizeof(float));
    EXPECT_EQ(dst, src);
    // Overlapping: moved one float to the right, as memmove does.
    cpu.copy_on_device(src.data() + 1, src.data(), (n - 1) * sizeof(float));
    for (size_t i = 1; i < n; ++i) ASSERT_EQ(src[i], static_cast<float>(i - 1)) << i;
  }
}

TEST(CpuBackendOps, ScaleMultipliesInPlace) {
  CpuBackend cpu;
  std::vector<float> x = {1, -2, 3};
  cpu.scale(x.data(), x.size(), -2.0f);
  EXPECT_EQ(x, (std::vector<float>{-2, 4, -6}));
}

TEST(CpuBackendOps, SumOfSquaresIsAccumulatedInDouble) {
  CpuBackend cpu;
  const size_t n = 200000;
  std::vector<float> x(n, 0.1f);
  const double expected = static_cast<double>(0.1f) * 0.1f * n;
  EXPECT_NEAR(cpu.sum_squares(x.data(), n), expected, expected * 1e-10);  // float accumulation would be ~1e-4 off
  std::vector<float> small = {3, 4};
  EXPECT_DOUBLE_EQ(cpu.sum_squares(small.data(), 2), 25.0);
  EXPECT_DOUBLE_EQ(cpu.sum_squares(small.data(), 0), 0.0);
}

}  // namespace
}  // namespace dptrain
