#include "runtime/core/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "runtime/core/kernel_dispatch.h"

namespace dptrain::exact {

namespace {

constexpr double kLimb = 1099511627776.0;              // 2^40
constexpr double kInvLimb = 1.0 / kLimb;                // 2^-40, exact
constexpr double kRound = 6755399441055744.0;           // 1.5 * 2^52: (y + kRound) - kRound rounds |y| < 2^51
constexpr double kLargestScaled = 4722366482869645213696.0;  // 2^72: |x * 2^F| below this keeps |hi| < 2^32
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kParallelElements = 1 << 16;  // below this, one thread is faster

double up(ExactScale scale) { return std::ldexp(1.0, static_cast<int>(scale)); }

// round(y) to the nearest integer (ties to even), for |y| < 2^51; NaN stays NaN.
inline double round_small(double y) { return (y + kRound) - kRound; }

// An integer v held in a double or an int64, |v| < 2^51, converted exactly the other way: v + 1.5 * 2^52
// lies in [2^52, 2^53), where doubles are the integers, so its bits are those of 1.5 * 2^52 plus v.
// Unlike a cast, both vectorize on AVX2, which has no packed conversion between double and int64.
constexpr int64_t kRoundBits = 0x4338000000000000;  // the bits of kRound
inline int64_t small_to_int(double v) {
  const double biased = v + kRound;
  uint64_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return static_cast<int64_t>(bits - static_cast<uint64_t>(kRoundBits));
}
inline double small_to_double(int64_t v) {
  const int64_t bits = v + kRoundBits;
  double biased;
  std::memcpy(&biased, &bits, sizeof biased);
  return biased - kRound;
}

// The (hi, lo) term of d = x * 2^F: hi = round(d / 2^40), lo = round(d - hi * 2^40). Every step is
// exact: d is a float or double scaled by a power of two, and d - hi * 2^40 has at most 40 bits.
inline void split(double d, double& hi, double& lo) {
  hi = round_small(d * kInvLimb);
  lo = round_small(d - hi * kLimb);
  if (!(std::fabs(d) < kLargestScaled)) hi = kNaN;  // too large, infinite or NaN: the sum is NaN
}

// hi[i] += the term of x[i] * factor, lo[i] likewise, for i < n: the loop every exact sum runs.
DPTRAIN_CPU_KERNEL void add_terms(const float* x, double* hi, double* lo, size_t n, double factor) {
  for (size_t i = 0; i < n; ++i) {
    double h, l;
    split(static_cast<double>(x[i]) * factor, h, l);
    hi[i] += h;
    lo[i] += l;
  }
}

// hi[i], lo[i] = the term of x[i] * factor, for i < n: a sum's first term.
DPTRAIN_CPU_KERNEL void set_terms(const float* x, double* hi, double* lo, size_t n, double factor) {
  for (size_t i = 0; i < n; ++i) split(static_cast<double>(x[i]) * factor, hi[i], lo[i]);
}

// out[i] = the total of (hi[i], lo[i]) times `factor`, rounded to float, for i < n.
DPTRAIN_CPU_KERNEL void round_totals(const double* hi, const double* lo, size_t n, double factor, float* out) {
  // hi * 2^40 is exact, so the addition rounds the exact total once: a function of the total alone.
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>((hi[i] * kLimb + lo[i]) * factor);
}

// out[i] = the total of (hi[i], lo[i]) in units of 2^-F, for i < n (lo carried first, so any lo
// below 2^51 will do). Returns false when a total is NaN or needs 62 bits or more: its out[i] is 0.
DPTRAIN_CPU_KERNEL bool integer_totals(const double* hi, const double* lo, size_t n, int64_t* out) {
  constexpr double kLargestHi = 4194304.0;  // 2^22: hi * 2^40 + lo stays below 2^62
  int64_t unrepresentable = 0;
  for (size_t i = 0; i < n; ++i) {
    const double units = round_small(lo[i] * kInvLimb);
    const double h = hi[i] + units, l = lo[i] - units * kLimb;  // |l| <= 2^39
    const bool ok = (std::fabs(h) < kLargestHi) & (std::fabs(l) < kLimb);  // false for NaN
    // In uint64, where any bits wrap without harm; kept only where ok.
    const uint64_t total = static_cast<uint64_t>(small_to_int(h)) * (uint64_t{1} << 40) +
                           static_cast<uint64_t>(small_to_int(l));
    out[i] = static_cast<int64_t>(total & (uint64_t{0} - static_cast<uint64_t>(ok)));
    unrepresentable |= static_cast<int64_t>(!ok);
  }
  return unrepresentable == 0;
}

// out[i] = totals[i] * factor rounded to float, for i < n: totals[i] rounds once to double (as a cast
// would), the scaling by a power of two is exact.
DPTRAIN_CPU_KERNEL void round_integers(const int64_t* totals, size_t n, double factor, float* out) {
  constexpr int64_t kLow = (int64_t{1} << 32) - 1;
  constexpr double kHighUnit = 4294967296.0;  // 2^32
  for (size_t i = 0; i < n; ++i) {
    // total = high * 2^32 + low with 0 <= low < 2^32: both halves convert exactly, and their sum
    // rounds once, to the same double as the total itself.
    const int64_t low = totals[i] & kLow;
    const int64_t high = (totals[i] - low) / (int64_t{1} << 32);
    out[i] = static_cast<float>((small_to_double(high) * kHighUnit + small_to_double(low)) * factor);
  }
}

}  // namespace

void add(const float* x, ExactSpan sums, ExactScale scale) {
  const double factor = up(scale);
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    add_terms(x + begin, sums.hi + begin, sums.lo + begin, end - begin, factor);
  });
}

void add_rows(const float* rows, size_t count, size_t stride, ExactSpan sums, ExactScale scale, Start start) {
  const double factor = up(scale);
  constexpr size_t kBlock = 512;  // elements whose two sums stay in L1 while every row is added
  auto add_block = [&](size_t begin) {
    const size_t len = std::min(kBlock, sums.size - begin);
    double* hi = sums.hi + begin;
    double* lo = sums.lo + begin;
    size_t k = 0;
    if (start == Start::Fresh && count > 0) {
      set_terms(rows + begin, hi, lo, len, factor);
      k = 1;
    } else if (start == Start::Fresh) {
      std::fill(hi, hi + len, 0.0);
      std::fill(lo, lo + len, 0.0);
    }
    for (; k < count; ++k) add_terms(rows + k * stride + begin, hi, lo, len, factor);
    carry({hi, lo, len});
  };
  if (sums.size < kParallelElements) {  // no OpenMP construct at all: small spans come in many calls
    for (size_t begin = 0; begin < sums.size; begin += kBlock) add_block(begin);
    return;
  }
  const auto blocks = static_cast<int64_t>((sums.size + kBlock - 1) / kBlock);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) add_block(static_cast<size_t>(b) * kBlock);
}

void add(double x, double& hi, double& lo, ExactScale scale) {
  double h, l;
  split(x * up(scale), h, l);
  hi += h;
  lo += l;
}

void carry(ExactSpan sums) {
  for (size_t i = 0; i < sums.size; ++i) {
    const double units = round_small(sums.lo[i] * kInvLimb);
    sums.hi[i] += units;
    sums.lo[i] -= units * kLimb;
  }
}

void add_sums(ExactSpan sums, const double* other_hi, const double* other_lo) {
  for (size_t i = 0; i < sums.size; ++i) {
    sums.hi[i] += other_hi[i];
    sums.lo[i] += other_lo[i];
  }
  carry(sums);
}

void to_float(ExactSpan sums, ExactScale scale, float* out) {
  const double factor = 1.0 / up(scale);
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    round_totals(sums.hi + begin, sums.lo + begin, end - begin, factor, out + begin);
  });
}

bool to_integers(ExactSpan sums, int64_t* out) {
  bool representable = true;
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    if (!integer_totals(sums.hi + begin, sums.lo + begin, end - begin, out + begin)) {
#pragma omp atomic write
      representable = false;
    }
  });
  return representable;
}

void integers_to_float(const int64_t* totals, size_t n, ExactScale scale, float* out) {
  const double factor = 1.0 / up(scale);
  for_each_thread_share(n, kParallelElements, [&](size_t begin, size_t end) {
    round_integers(totals + begin, end - begin, factor, out + begin);
  });
}

double to_double(double hi, double lo, ExactScale scale) { return (hi * kLimb + lo) / up(scale); }

void zero(ExactSpan sums) {
  for (size_t i = 0; i < sums.size; ++i) sums.hi[i] = sums.lo[i] = 0.0;
}

}  // namespace dptrain::exact

namespace dptrain {

void ExactSums::zero() {
  std::fill(values_.begin(), values_.end(), 0.0);
  terms_ = 0;
}

void ExactSums::add(const float* x, ExactScale scale) {
  if (terms_ == exact::kTermsBeforeCarry) carry();
  exact::add(x, span(), scale);
  ++terms_;
}

void ExactSums::carry() {
  exact::carry(span());
  terms_ = 0;
}

double ExactSums::to_double(size_t i, ExactScale scale) const {
  return exact::to_double(values_[i], values_[n_ + i], scale);
}

}  // namespace dptrain
