// Exact, order-independent sums of floating-point values (train.reproducible: true).
//
// A value x enters a sum as the integer round(x * 2^F) (ties to even), F the sum's fraction bits, and
// a sum is one int64 counting units of 2^-F. Integer addition is exact and associative, so a sum's
// total does not depend on the order in which its terms were added, on how they were split over
// threads or workers, or on which partial sums were added first: an all-reduce of int64 adds the
// workers' sums exactly in any order. Only the final rounding to float or double loses anything, and
// it depends on the exact total alone.
//
// Range (checked at every addition): a sum holds totals in [-2^62, 2^62) units, |total| below
// 2^(62 - F). A term or a total beyond, or a NaN or infinite term, makes the sum exact::kInvalid,
// which stays invalid whatever is added to it and rounds to NaN, which the non-finite checks of
// training report. An all-reduce of workers' sums that are each in range is exact while the true
// total stays below 2^63 units: always for two workers, and for more unless gradients are far beyond
// the range already (exact::valid checks each worker's sums before they travel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace dptrain {

// Fraction bits of a sum: the resolution is 2^-F, the largest total 2^(62 - F).
enum class ExactScale : int {
  Gradient = 48,   // gradients and their sums: 3.6e-15 resolution, totals up to 16384
  Statistic = 24,  // batch statistics (sums of x and x*x): 6.0e-8 resolution, totals up to 2.7e11
};

// n exact sums (a view, not owned).
struct ExactSpan {
  int64_t* sums = nullptr;
  size_t size = 0;
};

namespace exact {

// The value of a sum that went out of range or took a NaN or infinite term.
constexpr int64_t kInvalid = std::numeric_limits<int64_t>::min();
// Workers whose sums an all-reduce may add.
constexpr size_t kMaxWorkers = 8192;

// sums[i] += x[i] for i < sums.size.
void add(const float* x, ExactSpan sums, ExactScale scale);
// sums[i] += rows[k * stride + i] for k < count, each a term; with Start::Fresh, sums[i] = that total
// instead (their old values are not read). Spread over the calling thread's OpenMP team when called
// outside a parallel region.
enum class Start { Fresh, Add };
void add_rows(const float* rows, size_t count, size_t stride, ExactSpan sums, ExactScale scale,
              Start start = Start::Add);
// The weight gradient of a dense layer, micro-shard by micro-shard, without a float matrix in between:
// for j < m and i < n, sums[j * ld + i] gets one term per micro-shard of `micro_shard` consecutive rows
// among [0, rows) (the last may be shorter), in shard order: the float sum, in row order, of
// a[r * lda + j] * b[r * ldb + i] over the shard's rows r. With Start::Fresh the sums are set to those
// terms instead (their old values are not read). Each term is rounded by its shard's rows alone, so the
// sums do not depend on which rows another worker held. Runs on the calling thread: threads may call it
// on disjoint column ranges (b + i0, sums shifted by i0) at once.
void add_shard_products(const float* a, size_t lda, size_t m, const float* b, size_t ldb, size_t n, size_t rows,
                        size_t micro_shard, ExactSpan sums, size_t ld, ExactScale scale, Start start = Start::Add);
// sum += x as one term.
void add(double x, int64_t& sum, ExactScale scale);
// sums[i] += other[i].
void add_sums(ExactSpan sums, const int64_t* other);
// Whether every sum is in range (none is kInvalid): sums that may travel to other workers.
bool valid(ExactSpan sums);
// Each total rounded to float: out[i] (sums.size values), NaN for a sum out of range.
void to_float(ExactSpan sums, ExactScale scale, float* out);
// The total rounded to double, NaN for a sum out of range.
double to_double(int64_t sum, ExactScale scale);

}  // namespace exact

// n exact sums owned together, in one buffer for one all-reduce of int64 (data(), size()).
class ExactSums {
 public:
  ExactSums() = default;
  explicit ExactSums(size_t n) : values_(n, 0) {}

  size_t size() const { return values_.size(); }
  ExactSpan span() { return {values_.data(), values_.size()}; }
  int64_t* data() { return values_.data(); }
  const int64_t* data() const { return values_.data(); }
  void zero();
  // Adds x[0, size()) as one term each.
  void add(const float* x, ExactScale scale);

 private:
  std::vector<int64_t> values_;
};

}  // namespace dptrain
