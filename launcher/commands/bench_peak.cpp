// `dptrain bench peak`: this machine's single-precision GEMM rate with the build's BLAS and the
// threads a run would use.
#include "launcher/commands/bench_peak.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "launcher/commands/commands.h"
#include "launcher/workers.h"
#include "runtime/core/blas_kernels.h"
#include "runtime/core/context.h"

namespace dptrain::launcher {

namespace {

// Long enough for the slowest worker to finish its products.
constexpr Deadline kPeakDeadline(600 * 1000);

}  // namespace

JobGemmPeak measure_job_gemm_peak(Workers& workers, size_t size, size_t threads, size_t repeats) {
  Communicator& comm = workers.comm();
  comm.barrier(kPeakDeadline);
  JobGemmPeak peak;
  peak.own = measure_gemm_rate(size, threads, repeats);
  double total = peak.own.median_gflops;
  comm.all_reduce_sum(&total, 1, kPeakDeadline);
  peak.total_gflops = total;
  return peak;
}

size_t job_peak_resident_bytes(Workers& workers) {
  Communicator& comm = workers.comm();
  const double mine = static_cast<double>(peak_resident_bytes());
  std::vector<double> all(comm.size());
  comm.all_gather(&mine, sizeof(mine), all.data(), kPeakDeadline);
  return static_cast<size_t>(*std::max_element(all.begin(), all.end()));
}

std::string blas_core_json() {
  return "\"blas_core\": \"" + openblas_core_name() + "\", \"blas_core_reason\": \"" +
         to_string(decide_this_blas_core().reason) + "\"";
}

int run_bench_peak(const BenchPeakArgs& args, Workers& workers) {
  const size_t threads = args.threads ? args.threads : default_thread_count(workers.local().size);
  const JobGemmPeak peak = measure_job_gemm_peak(workers, args.size, threads, args.repeats);
  if (workers.rank() != 0) return 0;
  const GemmRate& rate = peak.own;
  const size_t world = workers.size();
  if (args.json) {
    std::printf("{\"framework\": \"dptrain\", \"benchmark\": \"gemm_peak\", \"size\": %zu, \"threads\": %zu, "
                "\"repeats\": %zu, \"workers\": %zu, \"gflops\": %.2f, \"best_gflops\": %.2f, "
                "\"job_gflops\": %.2f, %s, \"repeat_gflops\": [",
                rate.size, rate.threads, rate.gflops.size(), world, rate.median_gflops, rate.best_gflops,
                peak.total_gflops, blas_core_json().c_str());
    for (size_t i = 0; i < rate.gflops.size(); ++i) std::printf("%s%.2f", i ? ", " : "", rate.gflops[i]);
    std::printf("]}\n");
    return 0;
  }
  std::printf("bench peak: cblas_sgemm %zu x %zu x %zu (float32), %zu threads, %zu repeats\n", rate.size, rate.size,
              rate.size, rate.threads, rate.gflops.size());
  std::printf("  OpenBLAS core: %s\n", describe_this_blas_core().c_str());
  std::printf("  GEMM peak: %.1f GFLOP/s (median; best %.1f)\n", rate.median_gflops, rate.best_gflops);
  if (world > 1) {
    std::printf("  %zu workers measuring at once: %.1f GFLOP/s together (rank 0's shown above)\n", world,
                peak.total_gflops);
  }
  return 0;
}

}  // namespace dptrain::launcher
