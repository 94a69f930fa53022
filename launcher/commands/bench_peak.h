// The GEMM peak of a job's workers, measured now: what `dptrain bench peak` prints and `dptrain bench
// train` compares a model's achieved FLOP rate with.
#pragma once

#include <cstddef>
#include <string>

#include "runtime/core/machine_rates.h"

namespace dptrain::launcher {

class Workers;

// Every worker's GEMM rate, measured at the same time (so workers sharing a node share its cores as
// they do in training).
struct JobGemmPeak {
  GemmRate own;              // this worker's measurement (rank 0's is the one printed)
  double total_gflops = 0;   // the median rates of all workers, summed: the job's peak
};

// Collective: every worker times `repeats` S x S products on `threads` BLAS threads after a barrier.
JobGemmPeak measure_job_gemm_peak(Workers& workers, size_t size, size_t threads, size_t repeats);

// This process's OpenBLAS core and why it is in use, as two JSON members: "blas_core": "SkylakeX",
// "blas_core_reason": one of user, keep, openblas, dptrain (to_string(BlasCoreReason)).
std::string blas_core_json();

// The highest peak resident memory of any worker, in bytes (collective).
size_t job_peak_resident_bytes(Workers& workers);

}  // namespace dptrain::launcher
