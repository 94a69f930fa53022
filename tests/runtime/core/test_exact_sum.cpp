// Exact sums: the same bits whatever the order of the terms and however they are split into
// partial sums, within one float rounding of the true total, and NaN for terms or totals out of range.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "runtime/core/exact_sum.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Terms spread over many orders of magnitude and both signs, as gradients are.
std::vector<float> wide_terms(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 10);
  std::vector<float> x(n);
  for (float& v : x) v = std::ldexp(mantissa(gen), exponent(gen));
  return x;
}

// The exact sums of `terms` (one value each) added in `order`, cut into `parts` partial sums that
// are then added together, as workers do.
float exact_total(const std::vector<float>& terms, const std::vector<size_t>& order, size_t parts,
                  ExactScale scale = ExactScale::Gradient) {
  std::vector<ExactSums> partial(parts, ExactSums(1));
  for (size_t k = 0; k < order.size(); ++k) partial[k * parts / order.size()].add(&terms[order[k]], scale);
  ExactSums total(1);
  for (ExactSums& p : partial) exact::add_sums(total.span(), p.data());
  float out = 0;
  exact::to_float(total.span(), scale, &out);
  return out;
}

std::vector<size_t> identity(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  return order;
}

TEST(ExactSum, OrderAndSplitDoNotChangeTheBits) {
  const std::vector<float> terms = wide_terms(10000, 7);
  std::vector<size_t> order = identity(terms.size());
  const float reference = exact_total(terms, order, 1);
  std::mt19937 gen(11);
  for (size_t parts : {1, 2, 3, 4, 7}) {
    std::shuffle(order.begin(), order.end(), gen);
    EXPECT_EQ(bits_of(exact_total(terms, order, parts)), bits_of(reference)) << parts << " parts";
  }
}

TEST(ExactSum, PlainFloatSumsDependOnTheOrderOfTheSameTerms) {
  // The control: without exact sums the same terms give other bits in another order.
  const std::vector<float> terms = wide_terms(10000, 7);
  float forward = 0, backward = 0;
  for (size_t i = 0; i < terms.size(); ++i) forward += terms[i];
  for (size_t i = terms.size(); i-- > 0;) backward += terms[i];
  EXPECT_NE(bits_of(forward), bits_of(backward));
}

TEST(ExactSum, TheTotalIsTheTrueSumRoundedOnce) {
  const std::vector<float> terms = wide_terms(5000, 3);
  long double truth = 0;
  for (float v : terms) truth += v;  // 64-bit mantissa: far finer than the float result
  const float total = exact_total(terms, identity(terms.size()), 1);
  EXPECT_NEAR(total, static_cast<double>(truth), std::fabs(static_cast<double>(truth)) * 1.2e-7);
}

TEST(ExactSum, CancellingTermsLeaveTheSmallOnesExactly) {
  // 1e4 + 3e-9 - 1e4: a float sum in this order loses the small term; the exact sum keeps it.
  const std::vector<float> terms = {1e4f, 3e-9f, -1e4f};
  const float total = exact_total(terms, identity(3), 1);
  EXPECT_NEAR(total, 3e-9f, 1e-15);
  EXPECT_EQ(terms[0] + terms[1] + terms[2], 0.0f);
}

TEST(ExactSum, TotalsUpToTheRangeLimitStayExact) {
  // 10000 terms of 1.5: 15000, just below the gradient scale's limit of 2^14.
  const std::vector<float> terms(10000, 1.5f);
  EXPECT_EQ(exact_total(terms, identity(terms.size()), 3), 15000.0f);
}

TEST(ExactSum, TermsOutOfRangeOrNotFiniteMakeTheSumNaN) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 2e4f}) {
    const std::vector<float> terms = {1.0f, bad, 2.0f};
    EXPECT_TRUE(std::isnan(exact_total(terms, identity(3), 2))) << bad;
  }
  // The statistics scale takes far larger values.
  const std::vector<float> large = {1e9f, 1e9f};
  EXPECT_EQ(exact_total(large, identity(2), 2, ExactScale::Statistic), 2e9f);
}

TEST(ExactSum, ATotalThatLeftTheRangeStaysInvalid) {
  // 12000 + 12000 leaves the range; taking 12000 away again must not bring a total back, on either
  // path: a vector of sums (eight lanes and a rest) and one sum of doubles.
  const size_t n = 11;
  const std::vector<float> up(n, 12000.0f), down(n, -12000.0f);
  ExactSums sums(n);
  sums.add(up.data(), ExactScale::Gradient);
  EXPECT_TRUE(exact::valid(sums.span()));
  sums.add(up.data(), ExactScale::Gradient);
  EXPECT_FALSE(exact::valid(sums.span()));
  sums.add(down.data(), ExactScale::Gradient);
  std::vector<float> out(n);
  exact::to_float(sums.span(), ExactScale::Gradient, out.data());
  for (size_t i = 0; i < n; ++i) EXPECT_TRUE(std::isnan(out[i])) << i;
  int64_t one = 0;
  exact::add(12000.0, one, ExactScale::Gradient);
  exact::add(12000.0, one, ExactScale::Gradient);
  exact::add(-12000.0, one, ExactScale::Gradient);
  EXPECT_EQ(one, exact::kInvalid);
  EXPECT_TRUE(std::isnan(exact::to_double(one, ExactScale::Gradient)));
  // Terms small enough for the unchecked path (below 8 here) likewise: 3000 of 6 leave the range.
  ExactSums many(n);
  const std::vector<float> six(n, 6.0f), minus_six(n, -6.0f);
  for (int k = 0; k < 3000; ++k) many.add(six.data(), ExactScale::Gradient);
  EXPECT_FALSE(exact::valid(many.span()));
  for (int k = 0; k < 3000; ++k) many.add(minus_six.data(), ExactScale::Gradient);
  EXPECT_EQ(many.data()[0], exact::kInvalid);
  EXPECT_EQ(many.data()[n - 1], exact::kInvalid);
  // Two invalid sums added are invalid too (their int64s alone would wrap to 0).
  ExactSums other(n);
  other.add(up.data(), ExactScale::Gradient);
  other.add(up.data(), ExactScale::Gradient);
  exact::add_sums(sums.span(), other.data());
  EXPECT_EQ(sums.data()[0], exact::kInvalid);
  EXPECT_EQ(sums.data()[n - 1], exact::kInvalid);
}

TEST(ExactSum, RowsAddedAtOnceEqualTermsAddedOneByOne) {
  // add_rows (micro-shards' rows) against add, on 3 rows of 70000 elements (threaded).
  const size_t n = 70000, rows = 3, stride = n + 5;
  const std::vector<float> terms = wide_terms(rows * stride, 9);
  ExactSums by_rows(n), one_by_one(n);
  exact::add_rows(terms.data(), rows, stride, by_rows.span(), ExactScale::Gradient);
  for (size_t k = 0; k < rows; ++k) one_by_one.add(terms.data() + k * stride, ExactScale::Gradient);
  EXPECT_EQ(std::vector<int64_t>(by_rows.data(), by_rows.data() + n),
            std::vector<int64_t>(one_by_one.data(), one_by_one.data() + n));
  EXPECT_NE(by_rows.data()[0], 0);
}

TEST(ExactSum, WorkersSumsAddedAsIntegersEqualOneSum) {
  // What an all-reduce does: each worker's sums added as plain int64, in any order.
  const std::vector<float> terms = wide_terms(3000, 21);
  ExactSums parts[3] = {ExactSums(1000), ExactSums(1000), ExactSums(1000)}, all(1000);
  std::vector<int64_t> wire(1000, 0);
  for (int k : {2, 0, 1}) {
    parts[k].add(terms.data() + 1000 * k, ExactScale::Gradient);
    all.add(terms.data() + 1000 * k, ExactScale::Gradient);
    ASSERT_TRUE(exact::valid(parts[k].span()));
    for (size_t i = 0; i < wire.size(); ++i) wire[i] += parts[k].data()[i];
  }
  EXPECT_EQ(wire, std::vector<int64_t>(all.data(), all.data() + 1000));
}

TEST(ExactSum, TermsRoundToTheNearestUnitAndTotalsRoundLikeACast) {
  // Values of every size up to the range limit, both signs, and ties: each term is round(x * 2^F),
  // ties to even, on the vector path (eight at a time), its rest and the path for doubles; a total
  // rounds to float as a cast of the same integer would.
  const size_t n = 100003;
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-60, 13);
  std::vector<float> x(n);
  for (float& v : x) v = std::ldexp(mantissa(gen), exponent(gen));
  x[0] = std::ldexp(1.5f, -48);   // a tie: 1.5 units rounds to 2
  x[1] = std::ldexp(2.5f, -48);   // 2.5 units rounds to 2
  x[2] = std::ldexp(-0.5f, -48);  // rounds to 0
  x[n - 1] = std::ldexp(-3.5f, -48);  // in the rest: -4
  ExactSums sums(n);
  sums.add(x.data(), ExactScale::Gradient);
  std::vector<float> rounded(n);
  exact::to_float(sums.span(), ExactScale::Gradient, rounded.data());
  for (size_t i = 0; i < n; ++i) {
    const auto expected = static_cast<int64_t>(std::nearbyint(std::ldexp(static_cast<double>(x[i]), 48)));
    ASSERT_EQ(sums.data()[i], expected) << i << ": " << x[i];
    int64_t one = 0;
    exact::add(static_cast<double>(x[i]), one, ExactScale::Gradient);
    ASSERT_EQ(one, expected) << i;
    const float cast = static_cast<float>(static_cast<double>(expected) * std::ldexp(1.0, -48));
    ASSERT_EQ(bits_of(rounded[i]), bits_of(cast)) << i << ": total " << expected;
  }
  EXPECT_EQ(sums.data()[0], 2);
  EXPECT_EQ(sums.data()[1], 2);
  EXPECT_EQ(sums.data()[2], 0);
  EXPECT_EQ(sums.data()[n - 1], -4);
}

TEST(ExactSum, ShardProductsAreEachShardsFloatSumAddedExactly) {
  // add_shard_products against its definition, written out: shards of 4 rows (the last 3), 5 rows of
  // sums (four at a time and one alone), 37 columns (two chunks and a rest), added to sums already there.
  const size_t rows = 11, shard = 4, m = 5, n = 37, lda = m + 2, ldb = n + 3, ld = n + 1;
  std::vector<float> a = wide_terms(rows * lda, 31), b = wide_terms(rows * ldb, 32);
  for (float& v : a) v = std::ldexp(v, -8);  // products below 2^4: the totals stay in range
  for (float& v : b) v = std::ldexp(v, -8);
  ExactSums sums(m * ld), expected(m * ld);
  const std::vector<float> before = wide_terms(m * ld, 33);
  sums.add(before.data(), ExactScale::Gradient);
  expected.add(before.data(), ExactScale::Gradient);
  exact::add_shard_products(a.data(), lda, m, b.data(), ldb, n, rows, shard, sums.span(), ld, ExactScale::Gradient);
  for (size_t j = 0; j < m; ++j) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t first = 0; first < rows; first += shard) {
        float p = 0.0f;
        for (size_t r = first; r < std::min(rows, first + shard); ++r) p += a[r * lda + j] * b[r * ldb + i];
        exact::add(static_cast<double>(p), expected.data()[j * ld + i], ExactScale::Gradient);
      }
    }
  }
  EXPECT_EQ(std::vector<int64_t>(sums.data(), sums.data() + m * ld),
            std::vector<int64_t>(expected.data(), expected.data() + m * ld));
  EXPECT_TRUE(exact::valid(expected.span()));
  // Start::Fresh: the same terms without what was there; the column between rows is not touched.
  ExactSums fresh(m * ld);
  fresh.data()[n] = 77;
  exact::add_shard_products(a.data(), lda, m, b.data(), ldb, n, rows, shard, fresh.span(), ld, ExactScale::Gradient,
                            exact::Start::Fresh);
  for (size_t j = 0; j < m; ++j) {
    for (size_t i = 0; i < n; ++i) {
      int64_t base = 0;
      exact::add(static_cast<double>(before[j * ld + i]), base, ExactScale::Gradient);
      ASSERT_EQ(fresh.data()[j * ld + i] + base, expected.data()[j * ld + i]) << j << ", " << i;
    }
  }
  EXPECT_EQ(fresh.data()[n], 77);
}

TEST(ExactSum, DoublesSumExactlyInAnyOrder) {
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> value(-1e6, 1e6);
  std::vector<double> terms(1000);
  for (double& v : terms) v = value(gen) * std::ldexp(1.0, static_cast<int>(gen() % 20) - 10);
  auto total = [&](const std::vector<double>& xs) {
    int64_t sum = 0;
    for (double v : xs) exact::add(v, sum, ExactScale::Statistic);
    return exact::to_double(sum, ExactScale::Statistic);
  };
  const double forward = total(terms);
  std::reverse(terms.begin(), terms.end());
  EXPECT_EQ(total(terms), forward);
  EXPECT_FALSE(std::isnan(forward));
}

}  // namespace
}  // namespace dptrain
