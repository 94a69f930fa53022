// Exact sums: the same bits whatever the order of the terms and however they are split into
// partial sums, within one float rounding of the true total, and NaN for terms out of range.
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
// are carried and then added together, as workers do.
float exact_total(const std::vector<float>& terms, const std::vector<size_t>& order, size_t parts,
                  ExactScale scale = ExactScale::Gradient) {
  std::vector<ExactSums> partial(parts, ExactSums(1));
  for (size_t k = 0; k < order.size(); ++k) partial[k * parts / order.size()].add(&terms[order[k]], scale);
  ExactSums total(1);
  for (ExactSums& p : partial) {
    p.carry();
    exact::add_sums(total.span(), p.span().hi, p.span().lo);
  }
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

TEST(ExactSum, ManyTermsCarryOnTheirOwn) {
  // More terms than one lo holds between carries, all near the largest allowed.
  const std::vector<float> terms(3 * exact::kTermsBeforeCarry + 5, 60000.5f);
  const float total = exact_total(terms, identity(terms.size()), 1);
  EXPECT_EQ(total, static_cast<float>(60000.5 * static_cast<double>(terms.size())));
}

TEST(ExactSum, TermsOutOfRangeOrNotFiniteMakeTheSumNaN) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 2e7f}) {
    const std::vector<float> terms = {1.0f, bad, 2.0f};
    EXPECT_TRUE(std::isnan(exact_total(terms, identity(3), 2))) << bad;
  }
  // The statistics scale takes far larger terms.
  const std::vector<float> large = {1e9f, 1e9f};
  EXPECT_EQ(exact_total(large, identity(2), 2, ExactScale::Statistic), 2e9f);
}

TEST(ExactSum, RowsAddedAtOnceEqualTermsAddedOneByOne) {
  // add_rows (the dense layer's micro-shards) against add, on 3 rows of 70000 elements (threaded).
  const size_t n = 70000, rows = 3, stride = n + 5;
  const std::vector<float> terms = wide_terms(rows * stride, 9);
  ExactSums by_rows(n), one_by_one(n);
  exact::add_rows(terms.data(), rows, stride, by_rows.span(), ExactScale::Gradient);
  for (size_t k = 0; k < rows; ++k) one_by_one.add(terms.data() + k * stride, ExactScale::Gradient);
  one_by_one.carry();
  std::vector<float> a(n), b(n);
  exact::to_float(by_rows.span(), ExactScale::Gradient, a.data());
  exact::to_float(one_by_one.span(), ExactScale::Gradient, b.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], 0.0f);
}

TEST(ExactSum, IntegerTotalsSummedInAnyOrderRoundLikeTheSums) {
  // What travels between workers: each worker's carried sums as int64, added as integers.
  const std::vector<float> terms = wide_terms(3000, 21);
  ExactSums parts[3] = {ExactSums(1000), ExactSums(1000), ExactSums(1000)}, all(1000);
  std::vector<int64_t> wire(1000, 0), part_wire(1000);
  for (int k = 0; k < 3; ++k) {
    parts[k].add(terms.data() + 1000 * k, ExactScale::Gradient);
    parts[k].carry();
    all.add(terms.data() + 1000 * k, ExactScale::Gradient);
    ASSERT_TRUE(exact::to_integers(parts[k].span(), part_wire.data()));
    for (size_t i = 0; i < wire.size(); ++i) wire[i] += part_wire[i];
  }
  all.carry();
  std::vector<float> from_wire(1000), direct(1000);
  exact::integers_to_float(wire.data(), wire.size(), ExactScale::Gradient, from_wire.data());
  exact::to_float(all.span(), ExactScale::Gradient, direct.data());
  EXPECT_EQ(from_wire, direct);
  // A total beyond 2^14 (in units of 2^-48: 2^62) or NaN cannot travel.
  ExactSums big(2);
  const float values[2] = {20000.0f, 1.0f};
  big.add(values, ExactScale::Gradient);
  big.carry();
  EXPECT_FALSE(exact::to_integers(big.span(), part_wire.data()));
}

TEST(ExactSum, IntegerConversionsEqualPlainCastsOverTheWholeRange) {
  // Enough values for several threads; totals of every size up to 2^62 and both signs, with lo not
  // yet carried (up to 2^50), as the vectorized conversions must take them.
  const size_t n = 100000;
  std::mt19937_64 gen(9);
  std::uniform_int_distribution<int64_t> hi_units(-(int64_t{1} << 21), (int64_t{1} << 21));
  std::uniform_int_distribution<int64_t> lo_units(-(int64_t{1} << 50), (int64_t{1} << 50));
  std::uniform_int_distribution<int> shift(0, 21);
  std::vector<double> values(2 * n);
  ExactSpan sums{values.data(), values.data() + n, n};
  std::vector<int64_t> expected(n);
  for (size_t i = 0; i < n; ++i) {
    const int s = shift(gen);
    sums.hi[i] = static_cast<double>(hi_units(gen) >> s);
    sums.lo[i] = static_cast<double>(lo_units(gen) >> s);
    expected[i] = static_cast<int64_t>(sums.hi[i]) * (int64_t{1} << 40) + static_cast<int64_t>(sums.lo[i]);
  }
  std::vector<int64_t> wire(n);
  ASSERT_TRUE(exact::to_integers(sums, wire.data()));
  EXPECT_EQ(wire, expected);
  std::vector<float> rounded(n);
  exact::integers_to_float(wire.data(), n, ExactScale::Gradient, rounded.data());
  for (size_t i = 0; i < n; ++i) {
    const float cast = static_cast<float>(static_cast<double>(expected[i]) * std::ldexp(1.0, -48));
    ASSERT_EQ(bits_of(rounded[i]), bits_of(cast)) << i << ": total " << expected[i];
  }
  // One total NaN, one beyond 2^62: not representable, and only those two read as 0.
  sums.hi[7] = std::numeric_limits<double>::quiet_NaN();
  sums.hi[70000] = std::ldexp(1.0, 22);
  EXPECT_FALSE(exact::to_integers(sums, wire.data()));
  EXPECT_EQ(wire[7], 0);
  EXPECT_EQ(wire[70000], 0);
  EXPECT_EQ(wire[8], expected[8]);
  EXPECT_EQ(wire[69999], expected[69999]);
}

TEST(ExactSum, DoublesSumExactlyInAnyOrder) {
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> value(-1e6, 1e6);
  std::vector<double> terms(1000);
  for (double& v : terms) v = value(gen) * std::ldexp(1.0, static_cast<int>(gen() % 20) - 10);
  auto total = [&](const std::vector<double>& xs) {
    double hi = 0, lo = 0;
    for (double v : xs) {
      exact::add(v, hi, lo, ExactScale::Statistic);
      exact::carry({&hi, &lo, 1});
    }
    return exact::to_double(hi, lo, ExactScale::Statistic);
  };
  const double forward = total(terms);
  std::reverse(terms.begin(), terms.end());
  EXPECT_EQ(total(terms), forward);
}

}  // namespace
}  // namespace dptrain
