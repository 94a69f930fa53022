#include "runtime/core/machine_rates.h"

#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"

namespace dptrain {

namespace {

constexpr size_t kMaxGemmSize = 16384;  // three such matrices take 3 GiB

// Restores the BLAS and OpenMP thread counts it found, however the measurement ends.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(size_t threads)
      : blas_(openblas_get_num_threads()), omp_(omp_get_max_threads()) {
    openblas_set_num_threads(static_cast<int>(threads));
    omp_set_num_threads(static_cast<int>(threads));
  }
  ~ThreadCountScope() {
    openblas_set_num_threads(blas_);
    omp_set_num_threads(omp_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int blas_, omp_;
};

}  // namespace

GemmRate measure_gemm_rate(size_t size, size_t threads, size_t repeats) {
  if (size == 0 || size > kMaxGemmSize) {
    throw UsageError("GEMM size must be in [1, " + std::to_string(kMaxGemmSize) + "], got " + std::to_string(size));
  }
  if (threads == 0) throw UsageError("GEMM threads must be at least 1");
  if (repeats == 0) throw UsageError("GEMM repeats must be at least 1");
  const size_t elements = size * size;
  std::vector<float> a(elements), b(elements), c(elements, 0.0f);  // (S, S) each, row-major
  Rng rng(1);
  for (size_t i = 0; i < elements; ++i) {
    a[i] = rng.uniform() - 0.5f;
    b[i] = rng.uniform() - 0.5f;
  }
  const ThreadCountScope scope(threads);
  const int s = static_cast<int>(size);
  auto product = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s, 1.0f, a.data(), s, b.data(), s, 0.0f, c.data(), s);
  };
  product();
  GemmRate rate;
  rate.size = size;
  rate.threads = threads;
  const double flops = 2.0 * static_cast<double>(size) * static_cast<double>(size) * static_cast<double>(size);
  for (size_t r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    product();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rate.gflops.push_back(flops / std::max(seconds, 1e-9) / 1e9);
  }
  std::vector<double> sorted = rate.gflops;
  std::sort(sorted.begin(), sorted.end());
  rate.median_gflops = sorted[sorted.size() / 2];
  rate.best_gflops = sorted.back();
  return rate;
}

size_t peak_resident_bytes() {
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<size_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace dptrain
