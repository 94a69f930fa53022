// `dptrain bench allreduce`: time and bandwidth of the gradient all-reduce, as nccl-tests report them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "comm/reducer.h"
#include "launcher/commands/commands.h"
#include "launcher/workers.h"
#include "runtime/core/errors.h"

namespace dptrain::launcher {

namespace {

using Clock = std::chrono::steady_clock;

// Mean seconds of one call of `op` over `iterations` back-to-back calls, after one untimed call;
// the slowest rank's figure (every rank waits for it anyway).
template <typename Op>
double time_op(Communicator& comm, size_t iterations, Deadline deadline, Op op) {
  op();
  comm.barrier(deadline);
  const auto start = Clock::now();
  for (size_t i = 0; i < iterations; ++i) op();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(iterations);
  // The maximum over ranks: gather every rank's time.
  std::vector<double> all(comm.size());
  comm.all_gather(&seconds, sizeof(seconds), all.data(), deadline);
  return *std::max_element(all.begin(), all.end());
}

}  // namespace

int run_bench_allreduce(const BenchAllreduceArgs& args, Workers& workers) {
  Communicator& comm = workers.comm();
  auto* mpi = dynamic_cast<MpiCommunicator*>(&comm);
  if (!mpi || comm.size() < 2) {
    throw UsageError("bench allreduce needs at least 2 workers: run it as mpirun -np 2 dptrain bench allreduce");
  }
  if (args.min_bytes > args.max_bytes) throw UsageError("--min-bytes is larger than --max-bytes");
  const Deadline deadline(static_cast<int64_t>(args.timeout_seconds * 1000));
  const size_t n = comm.size();
  const double bus_factor = 2.0 * static_cast<double>(n - 1) / static_cast<double>(n);
  const bool root = comm.rank() == 0;
  if (root) {
    std::printf("bench allreduce: %zu workers (%s), float32 sum in place, bucket %.3g MiB, busbw = algbw * 2(n-1)/n\n",
                n, comm.backend(), args.bucket_mb);
    std::printf("%12s %12s | %-28s | %-28s | %-28s\n", "", "", "MPI_Allreduce", "Communicator (one call)",
                "bucketed (GradientReducer)");
    std::printf("%12s %12s | %9s %9s %8s | %9s %9s %8s | %9s %9s %8s %s\n", "bytes", "floats", "time us", "algbw",
                "busbw", "time us", "algbw", "busbw", "time us", "algbw", "busbw", "buckets");
    std::printf("%12s %12s | %9s %9s %8s | %9s %9s %8s | %9s %9s %8s\n", "", "", "", "GB/s", "GB/s", "", "GB/s",
                "GB/s", "", "GB/s", "GB/s");
  }
  std::vector<float> buffer(args.max_bytes / sizeof(float) + 16, 1.0f);
  for (size_t bytes = args.min_bytes; bytes <= args.max_bytes; bytes *= 2) {
    const size_t count = std::max<size_t>(1, bytes / sizeof(float));
    // Fewer repetitions for big messages: about 1 GiB moved per size at most, and at least 5.
    const size_t iterations = std::max<size_t>(5, std::min(args.iterations, (size_t{1} << 30) / bytes));
    float* data = buffer.data();
    const double plain = time_op(comm, iterations, deadline, [&] {
      DPTRAIN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, mpi->comm()));
    });
    const double single = time_op(comm, iterations, deadline, [&] { comm.all_reduce_sum(data, count, deadline); });
    GradientReducer reducer(comm, data, count, static_cast<size_t>(args.bucket_mb * 1024 * 1024), deadline);
    const double bucketed = time_op(comm, iterations, deadline, [&] {
      reducer.begin_step();
      reducer.ready(0, count);
      reducer.finish();
    });
    if (root) {
      auto row = [&](double seconds) {
        const double algbw = static_cast<double>(count * sizeof(float)) / seconds / 1e9;
        std::printf(" %9.1f %9.3f %8.3f |", seconds * 1e6, algbw, algbw * bus_factor);
      };
      std::printf("%12zu %12zu |", count * sizeof(float), count);
      row(plain);
      row(single);
      const double algbw = static_cast<double>(count * sizeof(float)) / bucketed / 1e9;
      std::printf(" %9.1f %9.3f %8.3f %zu (%.0f%% of MPI_Allreduce busbw)\n", bucketed * 1e6, algbw,
                  algbw * bus_factor, reducer.buckets().size(), 100.0 * plain / bucketed);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace dptrain::launcher
