// Exact, order-independent sums of floating-point values (train.reproducible: true).
//
// A value x enters a sum as the integer round(x * 2^F), F the sum's fraction bits, held in two
// doubles: hi counts units of 2^40 and lo the rest (both integers, |lo| <= 2^39 after a carry).
// Integers below 2^53 add exactly in double, so a sum's total does not depend on the order in which
// its terms were added, on how they were split over threads or workers, or on which of several
// partial sums were carried first: any all-reduce of doubles sums (hi, lo) pairs exactly. Only the
// final rounding to float or double loses anything, and it depends on the exact total alone.
//
// Limits (checked): a term must have |x| < 2^(72 - F) (then |hi| < 2^32 per term, and 2^21 terms of
// one element stay exact); beyond, and for NaN or infinity, the term makes the sum NaN, which the
// non-finite checks of training report. At most 2^12 terms are added to one lo before a carry (the
// accumulators below carry on their own) and at most 2^13 workers add their pairs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dptrain {

// Fraction bits of a sum: the resolution is 2^-F, the largest term 2^(72 - F).
enum class ExactScale : int {
  Gradient = 48,   // gradients and their sums: 3.6e-15 resolution, terms up to 1.7e7, totals up to 16384
  Statistic = 32,  // batch statistics (sums of x and x*x): 2.3e-10 resolution, terms up to 1.1e12
};

// The (hi, lo) halves of n exact sums, each array n long (views, not owned).
struct ExactSpan {
  double* hi = nullptr;
  double* lo = nullptr;
  size_t size = 0;
};

namespace exact {

// Terms one lo may take before it needs a carry.
constexpr size_t kTermsBeforeCarry = 4096;
// Workers whose pairs an all-reduce may add.
constexpr size_t kMaxWorkers = 8192;

// sums[i] += x[i] for i < sums.size.
void add(const float* x, ExactSpan sums, ExactScale scale);
// sums[i] += rows[k * stride + i] for k < count, each a term, then carried (count <= kTermsBeforeCarry);
// with Start::Fresh, sums[i] = that total instead (their old values are not read). Spread over the calling
// thread's OpenMP team when called outside a parallel region.
enum class Start { Fresh, Add };
void add_rows(const float* rows, size_t count, size_t stride, ExactSpan sums, ExactScale scale,
              Start start = Start::Add);
// hi/lo += x as one term.
void add(double x, double& hi, double& lo, ExactScale scale);
// Moves whole units of 2^40 from lo into hi, so that |lo| <= 2^39 (the value is unchanged).
void carry(ExactSpan sums);
// sums[i] += other[i], both carried.
void add_sums(ExactSpan sums, const double* other_hi, const double* other_lo);
// The total of each sum, rounded to float: out[i] (sums.size values).
void to_float(ExactSpan sums, ExactScale scale, float* out);
// The total rounded to double.
double to_double(double hi, double lo, ExactScale scale);
// Each carried sum's total as one integer (units of 2^-F), for an all-reduce of int64, which adds
// them exactly in any order: out[i] (sums.size values). False when a total is NaN or needs more than
// 62 bits (its out[i] is then 0): the caller's sum is not representable and must not be used.
bool to_integers(ExactSpan sums, int64_t* out);
// Integer totals (units of 2^-F) rounded to float.
void integers_to_float(const int64_t* totals, size_t n, ExactScale scale, float* out);
// Zeroes both halves.
void zero(ExactSpan sums);

}  // namespace exact

// Exact sums of n values owned together: hi[0, n) then lo[0, n) in one buffer, so that one
// all-reduce of 2n doubles (data(), 2 * size()) sums them over workers. Counts the terms added
// since the last carry and carries before lo could lose a bit.
class ExactSums {
 public:
  ExactSums() = default;
  explicit ExactSums(size_t n) : values_(2 * n, 0.0), n_(n) {}

  size_t size() const { return n_; }
  ExactSpan span() { return {values_.data(), values_.data() + n_, n_}; }
  double* data() { return values_.data(); }
  void zero();
  // Adds x[0, size()) as one term each.
  void add(const float* x, ExactScale scale);
  // Carried, ready for an all-reduce.
  void carry();
  double to_double(size_t i, ExactScale scale) const;

 private:
  std::vector<double> values_;
  size_t n_ = 0;
  size_t terms_ = 0;
};

}  // namespace dptrain
