// What this machine can do, measured rather than assumed: the single-precision matrix-multiply
// rate of the build's BLAS (the CPU's practical peak for convolution and dense layers) and the
// process's peak resident memory.
#pragma once

#include <cstddef>
#include <vector>

namespace dptrain {

// The rate of cblas_sgemm on square float32 matrices, from timed repeats.
struct GemmRate {
  size_t size = 0;       // S: each product is (S x S) * (S x S), 2 * S^3 FLOPs
  size_t threads = 0;    // BLAS (OpenMP) threads it ran on
  std::vector<double> gflops;  // each timed repeat's rate, in order
  double median_gflops = 0;    // the median of `gflops` (the upper one of an even count)
  double best_gflops = 0;      // the highest of `gflops`
};

// Times `repeats` products C = A * B of S x S float32 matrices (after one untimed product that
// warms up threads and caches) with the build's BLAS on `threads` threads; the BLAS and OpenMP
// thread counts are restored afterwards. UsageError when a count is 0 or S exceeds 16384.
GemmRate measure_gemm_rate(size_t size, size_t threads, size_t repeats);

// The highest resident memory of this process so far, in bytes (getrusage's ru_maxrss).
size_t peak_resident_bytes();

}  // namespace dptrain
