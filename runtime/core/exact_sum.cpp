#include "runtime/core/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/core/kernel_dispatch.h"

namespace dptrain::exact {

namespace {

constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52: (y + kRound) - kRound rounds |y| < 2^51
constexpr uint64_t kRoundBits = 0x4338000000000000;  // the bits of kRound
constexpr double kHalf = 2147483648.0;               // 2^31: a term's two halves are counted in it
constexpr double kInvHalf = 1.0 / kHalf;             // 2^-31, exact
constexpr double kLargest = 4611686018427387904.0;   // 2^62: terms and totals stay below it
constexpr uint64_t kRangeBias = uint64_t{1} << 62;    // v + 2^62 has its top bit clear iff v is in [-2^62, 2^62)
constexpr uint64_t kInvalidBits = uint64_t{1} << 63;  // kInvalid as uint64
constexpr size_t kParallelElements = 1 << 16;         // below this, one thread is faster

double up(ExactScale scale) { return std::ldexp(1.0, static_cast<int>(scale)); }
// The magnitude below which a float's term converts in one rounding: 2^(51 - F).
float fast_limit(ExactScale scale) { return std::ldexp(1.0f, 51 - static_cast<int>(scale)); }

// --- One sum at a time -------------------------------------------------------------------------------

// An integer-valued double v, |v| < 2^51, as int64 (in uint64 bits): v + 1.5 * 2^52 lies in [2^52, 2^53),
// where doubles are the integers, so its bits are those of 1.5 * 2^52 plus v. Unlike a cast, this
// vectorizes on AVX2, which has no packed conversion between double and int64.
inline uint64_t small_to_bits(double v) {
  const double biased = v + kRound;
  uint64_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return bits - kRoundBits;
}

// round(d) in units, as uint64 bits, for |d| < 2^62: round(d / 2^31) * 2^31 plus the rounded rest,
// each part below 2^51. Every step is exact: d - h * 2^31 is a multiple of d's last place and below 2^31.
inline uint64_t term_bits(double d) {
  const double h = (d * kInvHalf + kRound) - kRound;
  const double l = ((d - h * kHalf) + kRound) - kRound;
  return (small_to_bits(h) << 31) + small_to_bits(l);
}

// Whether a sum (as uint64 bits) is in [-2^62, 2^62).
inline bool in_range(uint64_t bits) { return ((bits + kRangeBias) >> 63) == 0; }

// sum + term (both uint64 bits), kInvalid where `ok` is false or the sum or the result is out of range.
inline uint64_t add_checked(uint64_t sum, uint64_t term, bool ok) {
  const uint64_t total = sum + term;
  return ok && in_range(sum) && in_range(total) ? total : kInvalidBits;
}

inline uint64_t as_bits(int64_t v) { return static_cast<uint64_t>(v); }
inline int64_t from_bits(uint64_t v) {
  int64_t out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

// sum + the term round(d), d = x * 2^F, checked: the path for one term, and for any term of 2^51 units
// or more.
inline int64_t add_term(int64_t sum, double d) {
  return from_bits(add_checked(as_bits(sum), term_bits(d), std::fabs(d) < kLargest));
}

// A total in range rounded to double (times the power of two `factor`), NaN out of range: the total's
// high and low 32 bits convert exactly, and their sum rounds once, to the same double as the total.
inline double total_to_double(int64_t total, double factor) {
  if (!in_range(as_bits(total))) return std::numeric_limits<double>::quiet_NaN();
  const uint64_t bits = as_bits(total);
  const double low = static_cast<double>(bits & 0xffffffffu);
  const double high = static_cast<double>(from_bits(bits) >> 32);  // arithmetic shift: the signed high half
  return (high * 4294967296.0 + low) * factor;
}

// --- Four sums at a time -----------------------------------------------------------------------------
// GCC/clang vector types for the loops below, whose lanes the compilers do not find on their own: each
// target clone lowers them to its widest registers (two SSE halves in the baseline build). The helpers
// are always inlined, so that they are compiled for the clone that calls them.
#if defined(__GNUC__)  // GCC and clang
// Passing these by value in a baseline build would differ from an AVX build; they never cross a call.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
using Floats8 = float __attribute__((vector_size(32)));
using Doubles4 = double __attribute__((vector_size(32)));
using Units4 = uint64_t __attribute__((vector_size(32)));
using Signed4 = int64_t __attribute__((vector_size(32)));

template <typename V, typename T>
[[gnu::always_inline]] inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T, typename V>
[[gnu::always_inline]] inline void store(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
[[gnu::always_inline]] inline Doubles4 splat(double x) { return Doubles4{x, x, x, x}; }
[[gnu::always_inline]] inline Units4 splat_bits(uint64_t x) { return Units4{x, x, x, x}; }
[[gnu::always_inline]] inline Floats8 splat8(float x) { return Floats8{x, x, x, x, x, x, x, x}; }
template <typename To, typename From>
[[gnu::always_inline]] inline To bitcast(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

// small_to_bits on four lanes: v integer-valued, |v| < 2^51.
[[gnu::always_inline]] inline Units4 small_to_bits4(Doubles4 v) {
  return bitcast<Units4>(v + splat(kRound)) - splat_bits(kRoundBits);
}

// The eight floats of v as two vectors of four doubles.
[[gnu::always_inline]] inline void widen(Floats8 v, Doubles4& low, Doubles4& high) {
  low = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), Doubles4);
  high = __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), Doubles4);
}

// term_bits on four lanes; ok: all ones where |d| < 2^62 (not for NaN or infinity).
[[gnu::always_inline]] inline Units4 terms4(Doubles4 d, Units4& ok) {
  const Doubles4 round = splat(kRound);
  const Doubles4 h = (d * splat(kInvHalf) + round) - round;
  const Doubles4 l = ((d - h * splat(kHalf)) + round) - round;
  const Units4 magnitude = bitcast<Units4>(d) & splat_bits(~kInvalidBits);  // |d|, NaN stays NaN
  ok = bitcast<Units4>(bitcast<Doubles4>(magnitude) < splat(kLargest));
  return (small_to_bits4(h) << 31) + small_to_bits4(l);
}

// add_checked on four lanes.
[[gnu::always_inline]] inline Units4 add_checked4(Units4 sum, Units4 term, Units4 ok) {
  const Units4 total = sum + term;
  const Units4 bias = splat_bits(kRangeBias);
  const Units4 out_of_range = ((sum + bias) | (total + bias)) >> 63;  // 1 or 0
  const Units4 keep = (out_of_range - splat_bits(1)) & ok;            // all ones where the total stands
  return (total & keep) | (splat_bits(kInvalidBits) & ~keep);
}

// sums[0, 8) += the eight lanes of v (each a term, times `scale`), each addition checked.
[[gnu::always_inline]] inline void add_lanes(Floats8 v, int64_t* sums, Doubles4 scale) {
  Doubles4 low, high;
  widen(v, low, high);
  Units4 ok_low, ok_high;
  const Units4 t_low = terms4(low * scale, ok_low), t_high = terms4(high * scale, ok_high);
  store(sums, add_checked4(load<Units4>(sums), t_low, ok_low));
  store(sums + 4, add_checked4(load<Units4>(sums + 4), t_high, ok_high));
}

// The common case, without checks: every lane of v times `scale` below 2^51 in magnitude (see small()),
// so that one rounding converts it. The totals are not checked either: `over` collects v + 2^62 of each,
// whose top bit says that a total left the range, for a later fix_range(). Between two fix_range() calls
// a sum may take up to kFastTerms such terms (each below 2^51) without wrapping.
constexpr size_t kFastTerms = 2048;
[[gnu::always_inline]] inline void add_lanes_fast(Floats8 v, int64_t* sums, Doubles4 scale, Units4& over) {
  const Units4 range = splat_bits(kRangeBias);
  Doubles4 low, high;
  widen(v, low, high);
  // round(x * scale) in one step: the rounding trick rounds as it converts.
  const Units4 s_low = load<Units4>(sums) + small_to_bits4(low * scale);
  const Units4 s_high = load<Units4>(sums + 4) + small_to_bits4(high * scale);
  over |= (s_low + range) | (s_high + range);
  store(sums, s_low);
  store(sums + 4, s_high);
}

// Whether every lane of v is below `limit` (2^(51 - F)) in magnitude, which NaN is not.
[[gnu::always_inline]] inline bool small(Floats8 v, float limit) {
  using Ints8 = int32_t __attribute__((vector_size(32)));
  const Floats8 magnitude = bitcast<Floats8>(bitcast<Ints8>(v) & (Ints8{} + 0x7fffffff));
  const Units4 ok = bitcast<Units4>(magnitude < splat8(limit));  // all ones in each lane that is
  return (ok[0] & ok[1] & ok[2] & ok[3]) == ~uint64_t{0};
}

// Sets the sums out of range to kInvalid, if `over` says there may be some.
[[gnu::always_inline]] inline void fix_range(int64_t* sums, size_t n, Units4 over) {
  const uint64_t any = over[0] | over[1] | over[2] | over[3];
  if ((any >> 63) == 0) return;
  for (size_t i = 0; i < n; ++i) {
    if (!in_range(as_bits(sums[i]))) sums[i] = kInvalid;
  }
}

// sums[i] += the term of x[i] * factor, for i < n (fresh: sums[i] = it): the loop every exact sum runs.
DPTRAIN_CPU_KERNEL void add_terms(const float* x, int64_t* sums, size_t n, double factor, float limit, bool fresh) {
  const Doubles4 scale = splat(factor);
  Units4 over{};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (fresh) {
      store(sums + i, Units4{});
      store(sums + i + 4, Units4{});
    }
    const Floats8 v = load<Floats8>(x + i);
    if (small(v, limit)) {
      add_lanes_fast(v, sums + i, scale, over);
    } else {
      add_lanes(v, sums + i, scale);
    }
  }
  fix_range(sums, i, over);
  for (; i < n; ++i) {
    sums[i] = add_term(fresh ? 0 : sums[i], static_cast<double>(x[i]) * factor);
  }
}

// sums[i] += other[i], for i < n, both in range or the result kInvalid.
DPTRAIN_CPU_KERNEL void add_totals(int64_t* sums, const int64_t* other, size_t n) {
  const Units4 bias = splat_bits(kRangeBias);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const Units4 b = load<Units4>(other + i);
    const Units4 ok = ((b + bias) >> 63) - splat_bits(1);  // all ones where `other` is in range
    store(sums + i, add_checked4(load<Units4>(sums + i), b, ok));
  }
  for (; i < n; ++i) {
    const uint64_t b = as_bits(other[i]);
    sums[i] = from_bits(add_checked(as_bits(sums[i]), b, in_range(b)));
  }
}

// Whether sums[i] is in range for every i < n.
DPTRAIN_CPU_KERNEL bool all_in_range(const int64_t* sums, size_t n) {
  uint64_t out = 0;
  for (size_t i = 0; i < n; ++i) out |= as_bits(sums[i]) + kRangeBias;
  return (out >> 63) == 0;
}

// out[i] = the total of sums[i] times `factor`, rounded to float, for i < n (total_to_double four at a time).
DPTRAIN_CPU_KERNEL void round_totals(const int64_t* sums, size_t n, double factor, float* out) {
  using Floats4 = float __attribute__((vector_size(16)));
  const Doubles4 round = splat(kRound), scale = splat(factor);
  const Units4 bias = splat_bits(kRoundBits);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const Units4 bits = load<Units4>(sums + i);
    // Both halves below 2^51 in magnitude, so that the rounding trick converts them exactly.
    const Units4 high = bitcast<Units4>(bitcast<Signed4>(bits) >> 32), low = bits & splat_bits(0xffffffffu);
    const Doubles4 total = (bitcast<Doubles4>(high + bias) - round) * splat(4294967296.0) +
                           (bitcast<Doubles4>(low + bias) - round);
    const Units4 out_of_range = ((bits + splat_bits(kRangeBias)) >> 63) * ~uint64_t{0};  // all ones or zero
    const Units4 result = (bitcast<Units4>(total * scale) & ~out_of_range) |
                          (bitcast<Units4>(splat(std::numeric_limits<double>::quiet_NaN())) & out_of_range);
    store(out + i, __builtin_convertvector(bitcast<Doubles4>(result), Floats4));
  }
  for (; i < n; ++i) out[i] = static_cast<float>(total_to_double(sums[i], factor));
}

// --- The dense layer's weight gradient ---------------------------------------------------------------

// The columns whose sums one pass over a micro-shard's rows computes: two vectors of floats.
constexpr size_t kChunk = 16;

// For rows [j, j + J) of the sums and one chunk of `width` <= kChunk columns: adds each micro-shard's
// products, b a packed chunk (rows of kChunk floats, zero beyond width). J rows at a time share each load of b
// and keep 2J independent float chains in flight; the sums stay where they are (in L1 while a block is
// summed), so that the registers hold the float chains alone.
template <size_t J>
[[gnu::always_inline]] inline void shard_product_rows(const float* a, size_t lda, size_t j, const float* b,
                                                      size_t width, size_t rows, size_t micro_shard, int64_t* sums,
                                                      size_t ld, double factor, float limit, bool fresh) {
  const Doubles4 scale = splat(factor);
  if (fresh) {
    for (size_t i = 0; i < J; ++i) {
      int64_t* row = sums + (j + i) * ld;
      if (width < kChunk) {
        std::fill(row, row + width, int64_t{0});
        continue;
      }
      for (size_t q = 0; q < kChunk; q += 4) store(row + q, Units4{});  // a call of memset would cost more
    }
  }
  Units4 over{};
  size_t fast_terms = 0;
  for (size_t first = 0; first < rows; first += micro_shard) {
    if (++fast_terms > kFastTerms) {
      for (size_t i = 0; i < J; ++i) fix_range(sums + (j + i) * ld, width, over);
      over = Units4{};
      fast_terms = 1;
    }
    const size_t last = std::min(rows, first + micro_shard);
    // The chains, p[2i] and p[2i + 1] for row j + i (a plain array GCC keeps in registers).
    Floats8 p[2 * J];
    for (size_t k = 0; k < 2 * J; ++k) p[k] = splat8(0.0f);
    for (size_t r = first; r < last; ++r) {
      const Floats8 b0 = load<Floats8>(b + r * kChunk), b1 = load<Floats8>(b + r * kChunk + 8);
      const float* ar = a + r * lda + j;
#pragma GCC unroll 8
      for (size_t i = 0; i < J; ++i) {
        const float x = ar[i];
        const Floats8 w = {x, x, x, x, x, x, x, x};  // written out: through splat8, GCC broadcasts in two halves
        p[2 * i] += w * b0;
        p[2 * i + 1] += w * b1;
      }
    }
#pragma GCC unroll 8
    for (size_t i = 0; i < J; ++i) {
      int64_t* row = sums + (j + i) * ld;
      if (width == kChunk) {
        for (size_t half = 0; half < 2; ++half) {
          if (small(p[2 * i + half], limit)) {
            add_lanes_fast(p[2 * i + half], row + 8 * half, scale, over);
          } else {
            add_lanes(p[2 * i + half], row + 8 * half, scale);
          }
        }
        continue;
      }
      // The last columns of a block: lane by lane.
      float lanes[kChunk];
      const Floats8 p0 = p[2 * i], p1 = p[2 * i + 1];  // copies: p itself stays in registers
      std::memcpy(lanes, &p0, sizeof p0);
      std::memcpy(lanes + 8, &p1, sizeof p1);
      for (size_t v = 0; v < width; ++v) row[v] = add_term(row[v], static_cast<double>(lanes[v]) * factor);
    }
  }
  for (size_t i = 0; i < J; ++i) fix_range(sums + (j + i) * ld, width, over);
}

// add_shard_products over n columns, b packed: chunk c's rows at b + c * rows * kChunk.
DPTRAIN_CPU_KERNEL void shard_product_block(const float* a, size_t lda, size_t m, const float* b, size_t n,
                                            size_t rows, size_t micro_shard, int64_t* sums, size_t ld, double factor,
                                            float limit, bool fresh) {
  constexpr size_t kRows = 4;
  for (size_t j = 0; j < m; j += kRows) {
    for (size_t c = 0; c * kChunk < n; ++c) {
      const float* chunk = b + c * rows * kChunk;
      const size_t width = std::min(kChunk, n - c * kChunk);
      int64_t* s = sums + c * kChunk;
      if (j + kRows <= m) {
        shard_product_rows<kRows>(a, lda, j, chunk, width, rows, micro_shard, s, ld, factor, limit, fresh);
      } else {
        for (size_t i = j; i < m; ++i) {
          shard_product_rows<1>(a, lda, i, chunk, width, rows, micro_shard, s, ld, factor, limit, fresh);
        }
      }
    }
  }
}

}  // namespace

void add(const float* x, ExactSpan sums, ExactScale scale) {
  const double factor = up(scale);
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    add_terms(x + begin, sums.sums + begin, end - begin, factor, fast_limit(scale), false);
  });
}

void add_rows(const float* rows, size_t count, size_t stride, ExactSpan sums, ExactScale scale, Start start) {
  const double factor = up(scale);
  constexpr size_t kBlock = 1024;  // sums that stay in L1 while every row is added
  auto add_block = [&](size_t begin) {
    const size_t len = std::min(kBlock, sums.size - begin);
    int64_t* s = sums.sums + begin;
    if (start == Start::Fresh && count == 0) std::fill(s, s + len, int64_t{0});
    for (size_t k = 0; k < count; ++k) {
      add_terms(rows + k * stride + begin, s, len, factor, fast_limit(scale), start == Start::Fresh && k == 0);
    }
  };
  if (sums.size < kParallelElements) {  // no OpenMP construct at all: small spans come in many calls
    for (size_t begin = 0; begin < sums.size; begin += kBlock) add_block(begin);
    return;
  }
  const auto blocks = static_cast<int64_t>((sums.size + kBlock - 1) / kBlock);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) add_block(static_cast<size_t>(b) * kBlock);
}

void add_shard_products(const float* a, size_t lda, size_t m, const float* b, size_t ldb, size_t n, size_t rows,
                        size_t micro_shard, ExactSpan sums, size_t ld, ExactScale scale, Start start) {
  if (micro_shard == 0) micro_shard = std::max<size_t>(rows, 1);
  // b's columns packed chunk by chunk, each chunk's rows contiguous (and zero-padded), so that the
  // products read them in order instead of one page per row.
  thread_local std::vector<float> packed;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  packed.resize(chunks * rows * kChunk);
  for (size_t c = 0; c < chunks; ++c) {
    const size_t begin = c * kChunk, width = std::min(kChunk, n - begin);
    float* out = packed.data() + c * rows * kChunk;
    if (width == kChunk) {  // not std::copy: a call of memmove per row would cost more than the copy
      for (size_t r = 0; r < rows; ++r) {
        store(out + r * kChunk, load<Floats8>(b + r * ldb + begin));
        store(out + r * kChunk + 8, load<Floats8>(b + r * ldb + begin + 8));
      }
      continue;
    }
    for (size_t r = 0; r < rows; ++r) {
      std::copy(b + r * ldb + begin, b + r * ldb + begin + width, out + r * kChunk);
      std::fill(out + r * kChunk + width, out + (r + 1) * kChunk, 0.0f);
    }
  }
  shard_product_block(a, lda, m, packed.data(), n, rows, micro_shard, sums.sums, ld, up(scale), fast_limit(scale),
                      start == Start::Fresh);
}

void add(double x, int64_t& sum, ExactScale scale) { sum = add_term(sum, x * up(scale)); }

void add_sums(ExactSpan sums, const int64_t* other) { add_totals(sums.sums, other, sums.size); }

bool valid(ExactSpan sums) {
  bool in_range = true;
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    if (!all_in_range(sums.sums + begin, end - begin)) {
#pragma omp atomic write
      in_range = false;
    }
  });
  return in_range;
}

void to_float(ExactSpan sums, ExactScale scale, float* out) {
  const double factor = 1.0 / up(scale);
  for_each_thread_share(sums.size, kParallelElements, [&](size_t begin, size_t end) {
    round_totals(sums.sums + begin, end - begin, factor, out + begin);
  });
}

double to_double(int64_t sum, ExactScale scale) { return total_to_double(sum, 1.0 / up(scale)); }

}  // namespace dptrain::exact

namespace dptrain {

void ExactSums::zero() { std::fill(values_.begin(), values_.end(), int64_t{0}); }

void ExactSums::add(const float* x, ExactScale scale) { exact::add(x, span(), scale); }

}  // namespace dptrain
