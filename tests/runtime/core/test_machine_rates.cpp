// measure_gemm_rate and peak_resident_bytes: what they measure, what they refuse, and that the
// thread counts a run set are left as they were.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/machine_rates.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(GemmRate, TimesEveryRepeatAndReportsTheirMedianAndBest) {
  const GemmRate rate = measure_gemm_rate(64, 1, 3);
  EXPECT_EQ(rate.size, 64u);
  EXPECT_EQ(rate.threads, 1u);
  ASSERT_EQ(rate.gflops.size(), 3u);
  for (double g : rate.gflops) EXPECT_GT(g, 0);
  EXPECT_GE(rate.best_gflops, rate.median_gflops);
  std::vector<double> sorted = rate.gflops;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(rate.median_gflops, sorted[1]);
  EXPECT_EQ(rate.best_gflops, sorted[2]);
}

TEST(GemmRate, RestoresTheThreadCount) {
  const int before = omp_get_max_threads();
  measure_gemm_rate(32, before == 1 ? 2 : 1, 1);
  EXPECT_EQ(omp_get_max_threads(), before);
}

TEST(GemmRate, RefusesEmptyOrHugeMeasurements) {
  EXPECT_THROW(measure_gemm_rate(0, 1, 1), UsageError);
  EXPECT_THROW(measure_gemm_rate(16385, 1, 1), UsageError);
  EXPECT_THROW(measure_gemm_rate(64, 0, 1), UsageError);
  EXPECT_THROW(measure_gemm_rate(64, 1, 0), UsageError);
}

TEST(PeakResidentBytes, GrowsWithMemoryTouched) {
  const size_t before = peak_resident_bytes();
  EXPECT_GT(before, 0u);
  const size_t bytes = 64u << 20;  // in KiB (ru_maxrss's unit) this would read as 64 GiB
  std::vector<char> block(bytes);
  std::memset(block.data(), 1, block.size());
  EXPECT_GE(peak_resident_bytes(), bytes);
  EXPECT_GE(peak_resident_bytes(), before);
  EXPECT_EQ(block[bytes - 1], 1);
}

}  // namespace
}  // namespace dptrain
