// Run-time choice of instruction set for hand-written loops (CPU layers, exact sums): the release binary targets
// baseline x86-64 (it must run on any x86-64 machine), and DPTRAIN_CPU_KERNEL on a leaf loop function
// makes GCC compile it three times (AVX-512F, AVX2 and baseline) and pick the best one the CPU has when
// the program loads (function multi-versioning, an ifunc).
//
// Put it on leaf functions that do a loop's whole work for a range (a thread's share, a plane), never
// on a function that opens an OpenMP region (its outlined body would not be cloned) or on one called
// per element (a clone is not inlined). It expands to nothing where the clones would not help or
// cannot be built: clang (the sanitizer build), a build for one CPU (-march=native with AVX-512 already
// on), and targets other than x86-64 Linux.
#pragma once

#include <omp.h>

#include <cstddef>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__AVX512F__)
#define DPTRAIN_CPU_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DPTRAIN_CPU_KERNEL
#endif

namespace dptrain {

// Runs span(begin, end) over [0, count) split into one contiguous share per OpenMP thread (on the calling
// thread alone below `parallel_from` elements), so that each share is one call of a DPTRAIN_CPU_KERNEL loop.
template <typename Span>
void for_each_thread_share(size_t count, size_t parallel_from, Span span) {
#pragma omp parallel if (count >= parallel_from)
  {
    const auto threads = static_cast<size_t>(omp_get_num_threads());
    const auto t = static_cast<size_t>(omp_get_thread_num());
    const size_t begin = count * t / threads, end = count * (t + 1) / threads;
    if (end > begin) span(begin, end);
  }
}

}  // namespace dptrain
